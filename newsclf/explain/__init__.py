"""Why the model labels a text as it does: token attributions and what every head attends to.

>>> explanation = explain(predictor, "央行宣布下调存款准备金率", method="occlusion")
>>> explanation.label, explanation.top_tokens(3)
>>> print(explanation.to_terminal())

:mod:`.methods` computes them, :mod:`.result` holds them, :mod:`.render` shows them; the
methods are described in docs/explanations.md.
"""

from newsclf.explain.methods import (IG_STEPS, METHODS, attention_rollout, check_method,
                                     delete_positions, explain, explain_batch,
                                     integrated_gradients, model_probabilities,
                                     occlusion_importance, rollout_importance)
from newsclf.explain.result import (ROLLOUT_DESCRIPTION, SIGNED_METHODS, BatchExplanation,
                                    Explanation)

__all__ = ["IG_STEPS", "METHODS", "ROLLOUT_DESCRIPTION", "SIGNED_METHODS", "BatchExplanation",
           "Explanation", "attention_rollout", "check_method", "delete_positions", "explain",
           "explain_batch", "integrated_gradients", "model_probabilities",
           "occlusion_importance", "rollout_importance"]
