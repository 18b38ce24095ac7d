"""What the lectures and homework use: the course's data sets, figures, and feedback for autograded homework."""
