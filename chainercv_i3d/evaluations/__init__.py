from chainercv_i3d.evaluations.kinetics_evaluation import evaluate_share  # NOQA
from chainercv_i3d.evaluations.kinetics_evaluation import EvalProtocol  # NOQA
from chainercv_i3d.evaluations.kinetics_evaluation import summarize  # NOQA
from chainercv_i3d.evaluations.metrics import classification_metrics  # NOQA
from chainercv_i3d.evaluations.metrics import mean_class_accuracy  # NOQA
from chainercv_i3d.evaluations.metrics import top_k_hits  # NOQA
