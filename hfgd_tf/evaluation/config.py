"""EvalConfig: the evaluation protocol, written into every result."""

import dataclasses

SCORED_OUTPUTS = ("logits", "logits_high")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """How predictions are made for scoring.

    Attributes:
        eval_scales: tuple of float. Input scales; logits (not probabilities) are averaged after resizing
            back to the input size. Defaults to (1.0,).
        flip: bool. Also predict the horizontally flipped input and average.
        sliding_window_height, sliding_window_width: int. When > 0, each scaled image is predicted in
            windows of this size (stride 2/3 of the window, last window aligned to the border) and the
            overlapping logits are averaged; 0 predicts the whole image at once.
        scored_output: str. The model output that is scored: "logits" (the prediction, the default) or
            "logits_high" (HFGD's OS32 guidance head, resized bilinearly to the input), to measure what the
            upsampler adds over its own guidance.
        eval_batch_size: int. Global evaluation batch, a multiple of the number of replicas; 0 (the
            default) takes one image per replica. The last batch is padded (padding is not scored), so
            every replica always gets a full batch.
    """

    eval_scales: tuple = (1.0,)
    flip: bool = False
    sliding_window_height: int = 0
    sliding_window_width: int = 0
    scored_output: str = "logits"
    eval_batch_size: int = 0

    def __post_init__(self):
        object.__setattr__(self, "eval_scales", tuple(float(s) for s in self.eval_scales))
        if not self.eval_scales or min(self.eval_scales) <= 0:
            raise ValueError(
                f"EvalConfig.eval_scales must be positive numbers. Received: eval_scales={self.eval_scales}"
            )
        if (self.sliding_window_height > 0) != (self.sliding_window_width > 0):
            raise ValueError(
                "EvalConfig.sliding_window_height and sliding_window_width must be both > 0 or both 0. "
                f"Received: {self.sliding_window_height}, {self.sliding_window_width}"
            )
        if self.scored_output not in SCORED_OUTPUTS:
            raise ValueError(
                f"EvalConfig.scored_output must be one of {SCORED_OUTPUTS}. Received: scored_output={self.scored_output!r}"
            )
        if self.eval_batch_size < 0:
            raise ValueError(
                f"EvalConfig.eval_batch_size must be >= 0 (0: one image per replica). Received: {self.eval_batch_size}"
            )

    def protocol(self):
        """A dict that describes the protocol, stored beside every number it produced."""
        return {
            "scales": list(self.eval_scales),
            "flip": self.flip,
            "sliding_window": [self.sliding_window_height, self.sliding_window_width]
            if self.sliding_window_height
            else None,
            "sliding_window_stride": "2/3 of the window" if self.sliding_window_height else None,
            "scored_at": "original label resolution",
            "scored_output": self.scored_output,
        }
