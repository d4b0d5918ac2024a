"""ChampionEvaluator: the stock Evaluator, minus a baseline that is the candidate itself."""
from components.champion_evaluator.component import ChampionEvaluator

__all__ = ["ChampionEvaluator"]
