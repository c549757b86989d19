"""Feature-extraction options, and named recipes of published feature sets.

A :class:`FeatureOptions` holds every choice that decides which frames and
crops each feature sees; a recipe is a complete set of them, taken from the
repository that made a feature set the community uses, with the file (or
issue) it was verified in. Only the windows, crops and frame rate are
reproduced: the network is this package's Inception-I3D (DeepMind's
weights, TF SAME padding), and the flow is the ``--flow_backend``'s.
"""

from chainercv_i3d.transforms.feature_options import FeatureOptions


#: Recipe name -> ``options`` (:class:`FeatureOptions`), ``endpoint``,
#: ``source`` (the repository and file or issue each number was verified in)
#: and ``notes`` (what this package does differently).
RECIPES = {
    'video_features_i3d': dict(
        options=FeatureOptions(window=64, stride=64, tail='drop',
                               lookahead=1, fps=0, crops='center'),
        endpoint='avgpool',
        source='v-iashin/video_features configs/i3d.yml (stack_size: 64, '
               'step_size: 64, extraction_fps: null) and '
               'models/i3d/extract_i3d.py (a stack runs when it holds '
               'stack_size + 1 frames: RGB takes the first 64, flow the 64 '
               'pairs; the stack that does not fill is not run; '
               'TensorCenterCrop(224) after a short side of 256)',
        notes='video_features computes flow with PWC-Net or RAFT and runs '
              "hassony2's PyTorch port; here the flow is --flow_backend's "
              'and the network is this package\'s'),
    'thumos14_i3d_16x4': dict(
        options=FeatureOptions(window=16, stride=4, tail='drop', fps=0,
                               crops='center'),
        endpoint='avgpool',
        source='Finspire13/pytorch-i3d-feature-extraction extract_features.py '
               '(chunk_size = 16; chunks start every --frequency frames '
               'while a whole chunk fits: the tail is dropped) with '
               '--frequency 4 at the native 30 fps, the setting whose '
               'lengths match the released CMCS THUMOS14 features '
               '(Finspire13/CMCS-Temporal-Action-Localization#29; '
               'happyharrycn/actionformer_release#5: "(5094 - 16) / 4 ~= '
               '1269 feature points")',
        notes='the script resizes frames to 340x256 (not the short side) '
              'and takes --sample_mode center_crop or oversample (ten '
              'crops); which one the released features used is not in the '
              'source (a commenter on CMCS#29 says ten crops): add '
              '--crops 10 for those'),
}


def describe_recipe(name):
    """One line: the recipe's options and its source."""
    recipe = RECIPES[name]
    o = recipe['options']
    return ('window {} stride {} tail {} lookahead {} fps {} crops {} {}; '
            'source: {}'.format(o.window, o.stride, o.tail, o.lookahead,
                                'native' if o.fps == 0 else o.fps, o.crops,
                                recipe['endpoint'], recipe['source']))


def recipe_names():
    return tuple(sorted(RECIPES))


def resolve_options(recipe=None, **explicit):
    """Options of a recipe with explicit ones on top.

    Args:
        recipe (str): A name of :data:`RECIPES`, or ``None`` (defaults).
        **explicit: :class:`FeatureOptions` fields given explicitly (a
            ``None`` value means not given).

    Returns:
        tuple: ``(options, overrides)``: the :class:`FeatureOptions`, and
        the sorted names of the recipe's fields that an explicit option
        changed.

    Raises:
        ValueError: An unknown recipe or a bad option.

    Example:
        >>> options, overrides = resolve_options('thumos14_i3d_16x4',
        ...                                      crops='10')
        >>> options.window, options.stride, options.crops, overrides
        (16, 4, '10', ['crops'])
    """
    if recipe is None:
        base = FeatureOptions()
    elif recipe in RECIPES:
        base = RECIPES[recipe]['options']
    else:
        raise ValueError('no recipe named {!r}: the recipes are {}'.format(
            recipe, ', '.join(recipe_names())))
    given = {k: v for k, v in explicit.items() if v is not None}
    options = base.replace(**given)
    overrides = sorted(k for k, v in given.items()
                       if recipe is not None and getattr(base, k) != v)
    return options, overrides
