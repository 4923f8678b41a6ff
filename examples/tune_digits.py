"""Tune a linear classifier on scikit-learn's bundled digits data set.

Run it with ``python examples/tune_digits.py`` (needs the ``examples``
extra: ``pip install ".[examples]"``). The data set ships with
scikit-learn, so nothing is downloaded.

Each trial trains an ``SGDClassifier`` one epoch per step with
``partial_fit`` and reports the validation accuracy. The search samples
the learning rate and the L2 penalty on log scales, the asynchronous
successive-halving scheduler stops weak trials early, and every trial
checkpoints its model. At the end the best checkpoint is loaded in this
process and scored on the held-out test split.
"""

import argparse
import os
import pickle

import trainable as tune


def load_splits(seed: int = 0):
    """Return (train, validation, test) pairs of scaled features and labels.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    features, labels = load_digits(return_X_y=True)
    features = features / 16.0
    x_rest, x_test, y_rest, y_test = train_test_split(
        features, labels, test_size=0.2, random_state=seed, stratify=labels)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=0.25, random_state=seed, stratify=y_rest)
    return (x_train, y_train), (x_val, y_val), (x_test, y_test)


class DigitsClassifier(tune.Trainable):
    """One epoch of ``SGDClassifier.partial_fit`` per step."""

    def setup(self, config, data=None):
        import numpy as np
        from sklearn.linear_model import SGDClassifier

        (self.x_train, self.y_train), (self.x_val, self.y_val), _ = data
        self.classes = np.unique(self.y_train)
        self.rng = np.random.default_rng(config.get("seed", 0))
        # The model's own random generator is pickled with it, so a
        # restored trial continues exactly as the original would have.
        self.model = SGDClassifier(
            loss="log_loss", learning_rate="constant",
            eta0=config["lr"], alpha=config["alpha"],
            random_state=np.random.RandomState(config.get("seed", 0)))

    def step(self):
        order = self.rng.permutation(len(self.y_train))
        for batch in range(0, len(order), 64):
            index = order[batch:batch + 64]
            self.model.partial_fit(self.x_train[index], self.y_train[index],
                                   classes=self.classes)
        accuracy = self.model.score(self.x_val, self.y_val)
        return {"mean_accuracy": accuracy}

    def save_checkpoint(self, tmp_checkpoint_dir):
        path = os.path.join(tmp_checkpoint_dir, "model.pkl")
        with open(path, "wb") as f:
            pickle.dump((self.model, self.rng), f)
        return path

    def load_checkpoint(self, checkpoint_path):
        with open(checkpoint_path, "rb") as f:
            self.model, self.rng = pickle.load(f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=12,
                        help="configurations to try (default: 12)")
    parser.add_argument("--epochs", type=int, default=15,
                        help="maximum epochs per trial (default: 15)")
    parser.add_argument("--local-dir", default=None,
                        help="where results go (default: ~/ray_results)")
    args = parser.parse_args()

    from trainable.schedulers import ASHAScheduler

    splits = load_splits()
    analysis = tune.run(
        tune.with_parameters(DigitsClassifier, data=splits),
        name="digits",
        config={
            "lr": tune.loguniform(1e-3, 1.0),
            "alpha": tune.loguniform(1e-6, 1e-2),
        },
        num_samples=args.num_samples,
        stop={"training_iteration": args.epochs},
        metric="mean_accuracy",
        mode="max",
        scheduler=ASHAScheduler(max_t=args.epochs, grace_period=3),
        checkpoint_freq=3,
        checkpoint_at_end=True,
        keep_checkpoints_num=1,
        checkpoint_score_attr="mean_accuracy",
        local_dir=args.local_dir,
        verbose=1,
    )
    best_trial = analysis.best_trial
    print("Best config:", best_trial.config)
    print(f"Best validation accuracy: "
          f"{best_trial.last_result['mean_accuracy']:.4f}")

    checkpoint = analysis.get_best_checkpoint(best_trial)
    model = DigitsClassifier(config=best_trial.config, data=splits)
    model.restore(checkpoint)
    x_test, y_test = splits[2]
    print(f"Test accuracy of the best checkpoint: "
          f"{model.model.score(x_test, y_test):.4f}")


if __name__ == "__main__":
    main()
