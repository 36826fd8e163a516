"""The plans and trainer names that the stages and the console scripts default to (one place, below all of them)."""

DEFAULT_PLANS = "SegAnyPETPlans"  # SegAnyPETPlanner's plans identifier (planners/seganypet_planner.py writes it)
DEFAULT_TRAINER = "SegAnyPETTrainer"
