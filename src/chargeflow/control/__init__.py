"""One control step across the actors (pure): demand, grant and split with reasons, and the planners."""
