from chainercv_i3d.evaluations.feature_comparison import compare_arrays  # NOQA
from chainercv_i3d.evaluations.feature_comparison import compare_files  # NOQA
from chainercv_i3d.evaluations.feature_comparison import compare_folders  # NOQA
from chainercv_i3d.evaluations.feature_comparison import load_features  # NOQA
from chainercv_i3d.evaluations.metrics import classification_metrics  # NOQA
from chainercv_i3d.evaluations.metrics import mean_class_accuracy  # NOQA
from chainercv_i3d.evaluations.metrics import top_k_hits  # NOQA
from chainercv_i3d.evaluations.metrics import validation_loss  # NOQA
from chainercv_i3d.evaluations.plots import plot_results  # NOQA
from chainercv_i3d.evaluations.results import format_table  # NOQA
from chainercv_i3d.evaluations.results import write_results  # NOQA
from chainercv_i3d.evaluations.saved_results import evaluation_settings  # NOQA
from chainercv_i3d.evaluations.saved_results import parts_dir  # NOQA
from chainercv_i3d.evaluations.saved_results import SavedResults  # NOQA
from chainercv_i3d.evaluations.video_evaluation import check_labels  # NOQA
from chainercv_i3d.evaluations.video_evaluation import evaluate_ranks  # NOQA
from chainercv_i3d.evaluations.video_evaluation import evaluate_share  # NOQA
from chainercv_i3d.evaluations.video_evaluation import EvalProtocol  # NOQA
from chainercv_i3d.evaluations.video_evaluation import preset_differences  # NOQA
from chainercv_i3d.evaluations.video_evaluation import summarize  # NOQA
from chainercv_i3d.evaluations.fvd import embed as fvd_embed  # NOQA
from chainercv_i3d.evaluations.fvd import frechet_distance  # NOQA
from chainercv_i3d.evaluations.fvd import fvd as frechet_video_distance  # NOQA
from chainercv_i3d.evaluations.fvd import preprocess_videos  # NOQA
from chainercv_i3d.evaluations.fvd import VideoSet  # NOQA
from chainercv_i3d.evaluations.fvd import VideoStats  # NOQA
