"""Semantic FPN (Kirillov et al., "Panoptic Feature Pyramid Networks", CVPR 2019) and its HFGD variant.

`SemanticFPN` is the plain baseline upsampler. `GuidedUpsampler` (HFGD's U-SFPN) is the same
pyramid whose top-down path starts from the guidance (the CAE output H) instead of raw C5, with a
further stage to output stride 2 from the stem features. Both produce a feature `[B, H/os, W/os, D]`
that a classifier turns into logits.

Feature dicts use the keys of `hfgd_tf.backbones.FEATURE_KEYS`: `S1` (OS2), `C2`..`C5` (OS4..OS32).
For backbones without a stride-2 level (ConvNeXt, Swin: 4x4/4 patch stems), the OS2 stage makes its own
S1 from the normalised image (key `IMAGE_KEY`) with a two-conv image stem that belongs to this layer, so
it trains with this layer's loss and exists only at output stride 2 ([ours], `image_stem_num_channels`).
Every resize goes to the shape of the next finer level instead of a fixed 2x, so odd input sizes stay
exact.
"""

import keras

from hfgd_tf.layers.conv_norm_act import ConvNormAct
from hfgd_tf.layers.normalization import normalize_norm_spec
from hfgd_tf.layers.resize import ResizeLike

OUTPUT_STRIDES = (8, 4, 2)
# Pyramid levels merged by the semantic head, finest first, for each output stride.
_MERGED_LEVELS = {8: ("C3", "C4", "C5"), 4: ("C2", "C3", "C4", "C5"), 2: ("C2", "C3", "C4", "C5")}
# Feature-dict key of the normalised image `[B, H, W, 3]`, read by the OS2 stage when it has an image stem.
IMAGE_KEY = "image"


@keras.saving.register_keras_serializable(package="hfgd_tf")
class SemanticFPN(keras.layers.Layer):
    """Semantic FPN: FPN laterals + top-down path, then per-level conv/upsample stages, summed.

    Per level l (0 = the finest merged level), the semantic head applies max(1, l) 3x3 conv-norm-ReLU
    stages, each followed by a resize to the next finer level, as in the authors' Semantic-FPN block
    (computed as the same sum with the coarser levels added before their common last resize: one
    resize on the finest grid instead of three, two at OS8; measured in one process, 12 interleaved
    calls: HFGD-R50-OS4 at batch 1, 512x512, 886 ms instead of 935 ms);
    the sum is projected to `output_channels` by a 1x1 conv-norm-ReLU. Laterals and stages run at
    `num_channels`; a head narrower than the output (128 inside, D = 256 out, as the 128-channel semantic
    head of Kirillov et al.) costs a quarter of the 3x3 FLOPs on the OS4 grid, where a D-wide head costs as
    much as a ResNet-50 ([ours]; docs/performance.md has the measurements). With `output_stride=2` the
    result is reduced to `os2_num_channels` (1x1), resized to the stem feature S1, added to a lateral of
    S1, refined by a 3x3 conv-norm-ReLU and projected back to `output_channels` (1x1). The narrow OS2
    stage is [ours]: at full width that one 3x3 conv would nearly double the model's FLOPs at 512x512,
    against the paper's point that OS2 comes cheaply. With `image_stem_num_channels > 0` (backbones without a
    stride-2 level), S1 is not read from the backbone but made by this layer's image stem (3x3/2 then
    3x3 conv-norm-ReLU) from `features["image"]`; its weights are part of this layer ([ours]).

    Args:
        num_channels: int. Width of every lateral and stage (the head width).
        output_stride: int. 8, 4 or 2. Defaults to 4.
        output_channels: int or None. Width of the output (D); None means `num_channels`.
        norm: str or dict. Defaults to None (sync batch norm).
        os2_num_channels: int or None. Width of the OS2 stage; None means max(8, num_channels // 4).
        image_stem_num_channels: int. Width of the own S1 image stem; 0 (default) reads S1 from the
            features. Only valid with `output_stride=2`.

    Call arguments:
        features: dict of `[B, H/s, W/s, C_s]` with keys C2..C5 (C3..C5 at OS8) and, at OS2, S1 or
            (with an image stem) "image" `[B, H, W, 3]`.

    Returns:
        `[B, H/os, W/os, output_channels]`.

    Example:
    >>> fpn = SemanticFPN(num_channels=8, output_stride=4)
    >>> feats = {k: np.zeros((2, 64 // s, 64 // s, 4), "float32") for k, s in [("C2", 4), ("C3", 8), ("C4", 16), ("C5", 32)]}
    >>> fpn(feats).shape
    TensorShape([2, 16, 16, 8])
    """

    def __init__(
        self,
        num_channels,
        output_stride=4,
        norm=None,
        os2_num_channels=None,
        image_stem_num_channels=0,
        output_channels=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_channels < 1 or (output_channels is not None and output_channels < 1):
            raise ValueError(
                "`num_channels` and `output_channels` must be >= 1. "
                f"Received: num_channels={num_channels}, output_channels={output_channels}"
            )
        if output_stride not in OUTPUT_STRIDES:
            raise ValueError(
                f"`output_stride` must be one of {OUTPUT_STRIDES}. Received: output_stride={output_stride}"
            )
        if image_stem_num_channels < 0 or (image_stem_num_channels and output_stride != 2):
            raise ValueError(
                "`image_stem_num_channels` must be 0, or > 0 with output_stride=2 (S1 is used only at OS2). "
                f"Received: image_stem_num_channels={image_stem_num_channels}, output_stride={output_stride}"
            )
        self.num_channels = num_channels
        self.output_channels = output_channels or num_channels
        self.image_stem_num_channels = image_stem_num_channels
        self.output_stride = output_stride
        self.norm = normalize_norm_spec(norm)
        self.merged_levels = _MERGED_LEVELS[output_stride]
        self.os2_num_channels = os2_num_channels or max(8, num_channels // 4)
        policy = self.dtype_policy
        self.laterals = {
            level: keras.layers.Conv2D(num_channels, 1, dtype=policy, name=f"lateral_{level.lower()}")
            for level in self._lateral_levels()
        }
        self.resize = ResizeLike(dtype=policy, name="resize")
        self.stages = {}
        for index, level in enumerate(self.merged_levels):
            self.stages[level] = [
                ConvNormAct(num_channels, 3, norm=self.norm, dtype=policy, name=f"stage_{level.lower()}_{i}")
                for i in range(max(1, index))
            ]
        self.fused_projection = ConvNormAct(
            self.output_channels, 1, norm=self.norm, dtype=policy, name="fused_projection"
        )
        if output_stride == 2:
            narrow = self.os2_num_channels
            self.stem_lateral = keras.layers.Conv2D(narrow, 1, dtype=policy, name="lateral_s1")
            self.stem_reduction = keras.layers.Conv2D(narrow, 1, dtype=policy, name="reduction_s1")
            self.stem_refine = ConvNormAct(narrow, 3, norm=self.norm, dtype=policy, name="stage_s1")
            self.stem_projection = ConvNormAct(
                self.output_channels, 1, norm=self.norm, dtype=policy, name="projection_s1"
            )
        self.image_stem = []
        if image_stem_num_channels:
            self.image_stem = [
                ConvNormAct(image_stem_num_channels, 3, strides=2, norm=self.norm, dtype=policy, name="image_stem_1"),
                ConvNormAct(image_stem_num_channels, 3, norm=self.norm, dtype=policy, name="image_stem_2"),
            ]

    def _lateral_levels(self):
        return self.merged_levels

    @property
    def required_features(self):
        """Feature keys the layer reads (at output stride 2 also S1, or "image" with an image stem)."""
        return tuple(self.merged_levels) + self._stem_keys()

    def _stem_keys(self):
        if self.output_stride != 2:
            return ()
        return (IMAGE_KEY,) if self.image_stem else ("S1",)

    def _build_decoder(self, features_shape):
        self._check_features(features_shape)
        for level, lateral in self.laterals.items():
            lateral.build(features_shape[level])
        decoded_shape = (None, None, None, self.num_channels)
        for stages in self.stages.values():
            for stage in stages:
                stage.build(decoded_shape)
        self.fused_projection.build(decoded_shape)
        if self.output_stride == 2:
            narrow_shape = (None, None, None, self.os2_num_channels)
            s1_shape = features_shape.get("S1")
            if self.image_stem:
                self.image_stem[0].build(features_shape[IMAGE_KEY])
                s1_shape = (None, None, None, self.image_stem_num_channels)
                self.image_stem[1].build(s1_shape)
            self.stem_lateral.build(s1_shape)
            self.stem_reduction.build((None, None, None, self.output_channels))
            self.stem_refine.build(narrow_shape)
            self.stem_projection.build(narrow_shape)

    def build(self, features_shape):
        self._build_decoder(features_shape)

    def _top(self, features, guidance, training):
        return self.laterals["C5"](features["C5"])

    def _check_features(self, features):
        required = set(self.merged_levels) | set(self._stem_keys())
        missing = required - set(features)
        if missing:
            raise ValueError(
                f"{type(self).__name__}(output_stride={self.output_stride}) needs feature keys "
                f"{sorted(required)}; missing {sorted(missing)}. Received keys: {sorted(features)}"
            )

    def _decode(self, features, guidance, training):
        self._check_features(features)
        # FPN top-down path: coarse to fine, each level = lateral + resized coarser level.
        pyramid = {"C5": self._top(features, guidance, training)}
        coarse = pyramid["C5"]
        for level in reversed(self.merged_levels[:-1]):
            lateral = self.laterals[level](features[level])
            coarse = lateral + self.resize(coarse, lateral)
            pyramid[level] = coarse
        # Semantic head: bring every level to the finest merged level and sum. Every coarser level's last
        # step is a resize from the second-finest level's grid to the finest one; bilinear resizing is
        # linear, so those branches are summed first and resized once (the same sum, one resize and one
        # add on the finest grid instead of three of each; two at OS8).
        finest = self.merged_levels[0]
        coarse_sum = None
        for index, level in enumerate(self.merged_levels[1:], start=1):
            x = pyramid[level]
            for stage_index, stage in enumerate(self.stages[level]):
                x = stage(x, training=training)
                if stage_index < index - 1:
                    x = self.resize(x, pyramid[self.merged_levels[index - stage_index - 1]])
            coarse_sum = x if coarse_sum is None else coarse_sum + x
        fused = self.stages[finest][0](pyramid[finest], training=training)
        fused = fused + self.resize(coarse_sum, pyramid[finest])
        fused = self.fused_projection(fused, training=training)
        if self.output_stride == 2:
            stem = self.stem_lateral(self._s1(features, training))
            reduced = self.resize(self.stem_reduction(fused), stem)
            fused = self.stem_projection(self.stem_refine(stem + reduced, training=training), training=training)
        return fused

    def _s1(self, features, training):
        if not self.image_stem:
            return features["S1"]
        x = features[IMAGE_KEY]
        for layer in self.image_stem:
            x = layer(x, training=training)
        return x

    def call(self, features, training=None):
        return self._decode(features, None, training)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_channels=self.num_channels,
            output_stride=self.output_stride,
            norm=self.norm,
            os2_num_channels=self.os2_num_channels,
            image_stem_num_channels=self.image_stem_num_channels,
            output_channels=self.output_channels,
        )
        return config


@keras.saving.register_keras_serializable(package="hfgd_tf")
class GuidedUpsampler(SemanticFPN):
    """HFGD's U-SFPN: a Semantic FPN whose top-down path starts from the high-level guidance H.

    HFGD (arXiv:2303.08646) lets isolated high-level features guide the upsampling: the pyramid top is
    H (the CAE output, projected by a 1x1 conv) instead of raw C5, so C5 itself is not an input. The
    stop-gradients on the inputs are applied by the segmenter (`StopGradient` layers), not here, so that
    this layer is also usable un-isolated for ablations.

    Args:
        num_channels: int. Head width (laterals, stages, the projected guidance).
        output_stride: int. 8, 4 or 2. Defaults to 4.
        norm: str or dict. Defaults to None (sync batch norm).
        os2_num_channels: int or None. Width of the OS2 stage (see `SemanticFPN`).
        image_stem_num_channels: int. Own S1 image stem width, 0 for none (see `SemanticFPN`).
        output_channels: int or None. D, the width of the output the class kernels classify; None means
            `num_channels`.

    Call arguments:
        features: dict with keys C2..C4 (C3..C4 at OS8) and, at OS2, S1 (or "image" with an image
            stem), `[B, H/s, W/s, C_s]`.
        guidance: H `[B, H/32, W/32, D]` (the C5 stride of the backbone).

    Returns:
        `[B, H/os, W/os, output_channels]`.
    """

    def __init__(
        self,
        num_channels,
        output_stride=4,
        norm=None,
        os2_num_channels=None,
        image_stem_num_channels=0,
        output_channels=None,
        **kwargs,
    ):
        super().__init__(
            num_channels,
            output_stride=output_stride,
            norm=norm,
            os2_num_channels=os2_num_channels,
            image_stem_num_channels=image_stem_num_channels,
            output_channels=output_channels,
            **kwargs,
        )
        self.guidance_projection = keras.layers.Conv2D(
            num_channels, 1, dtype=self.dtype_policy, name="guidance_projection"
        )

    def _lateral_levels(self):
        return self.merged_levels[:-1]

    def _top(self, features, guidance, training):
        return self.guidance_projection(guidance)

    def _check_features(self, features):
        super()._check_features({**features, "C5": None})

    def build(self, features_shape, guidance_shape):
        self._build_decoder(features_shape)
        self.guidance_projection.build(guidance_shape)

    def call(self, features, guidance, training=None):
        return self._decode(features, guidance, training)
