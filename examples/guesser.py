"""Guess a password with random search: the smallest trainable example.

Run it with ``python examples/guesser.py``. Each trial guesses one number;
the best trial is the one whose guess is closest to the password.
"""

import trainable as tune


class Guesser(tune.Trainable):
    """Reports how far its guess is from a fixed password."""

    def setup(self, config):
        self.password = 1024
        self.guess = config["guess"]

    def step(self):
        return {"diff": abs(self.guess - self.password)}


def main() -> None:
    analysis = tune.run(
        Guesser,
        stop={"training_iteration": 1},
        num_samples=10,
        config={"guess": tune.randint(1, 10000)},
        verbose=1,
    )
    best = analysis.get_best_config(metric="diff", mode="min")
    print("Best config:", best)


if __name__ == "__main__":
    main()
