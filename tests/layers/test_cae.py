import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.layers import (
    ASPPEncoder,
    ContextAugmentationEncoder,
    PPMEncoder,
    ProjectionEncoder,
    SinePositionEncoding2D,
)


@pytest.mark.parametrize(
    "encoder",
    [
        lambda: ContextAugmentationEncoder(16, num_blocks=2, num_heads=4),
        lambda: ASPPEncoder(16, dilation_rates=(1, 2, 3)),
        lambda: PPMEncoder(16),
        lambda: ProjectionEncoder(16),
    ],
)
@pytest.mark.parametrize("size", [(2, 2), (3, 5)])
def test_encoders_keep_size_and_project_to_num_channels(encoder, size):
    inputs = np.random.default_rng(0).normal(size=(2, *size, 12)).astype("float32")
    layer = encoder()
    output = layer(inputs)
    assert output.shape == (2, *size, 16)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_transformer_encoder_is_global():
    """Changing one token changes every output position (attention sees the whole map)."""
    layer = ContextAugmentationEncoder(16, num_heads=4)
    inputs = np.random.default_rng(0).normal(size=(1, 4, 4, 8)).astype("float32")
    base = layer(inputs).numpy()
    changed = inputs.copy()
    changed[0, 0, 0] += 5.0
    difference = np.abs(layer(changed).numpy() - base).sum(-1)[0]
    assert (difference[2:, 2:] > 0).all()


def test_transformer_rejects_bad_heads():
    with pytest.raises(ValueError, match="num_heads"):
        ContextAugmentationEncoder(18, num_heads=4)


def test_sine_position_encoding_values():
    encoding = SinePositionEncoding2D()(np.zeros((1, 3, 4, 8), "float32")).numpy()[0]
    half = 4
    # Row code in the first half: [sin(r w0), cos(r w0), sin(r w1), cos(r w1)], w_i = 1e4^(-2i/half).
    for row in range(3):
        for index in range(2):
            angle = row / 10000 ** (2 * index / half)
            np.testing.assert_allclose(encoding[row, 1, 2 * index], np.sin(angle), atol=1e-6)
            np.testing.assert_allclose(encoding[row, 1, 2 * index + 1], np.cos(angle), atol=1e-6)
    # Column code in the second half, same for every row.
    np.testing.assert_allclose(encoding[0, :, half:], encoding[2, :, half:])
    np.testing.assert_allclose(encoding[:, 3, half], np.sin(3.0))


def test_normalized_sine_position_encoding_places_cells_in_the_grid():
    """Normalized positions are (i + 0.5) / n * 2 pi: hand-computed for a 2x4 grid, and the same place of
    a grid (its centre, its first cell's quarter) gets the same code at every grid size."""
    encoding = SinePositionEncoding2D(positions="normalized")(np.zeros((1, 2, 4, 8), "float32")).numpy()[0]
    half = 4
    for row in range(2):
        for index in range(2):
            angle = (row + 0.5) / 2 * 2 * np.pi / 10000 ** (2 * index / half)
            np.testing.assert_allclose(encoding[row, 0, 2 * index], np.sin(angle), atol=1e-6)
            np.testing.assert_allclose(encoding[row, 0, 2 * index + 1], np.cos(angle), atol=1e-6)
    for col in range(4):
        np.testing.assert_allclose(encoding[0, col, half], np.sin((col + 0.5) / 4 * 2 * np.pi), atol=1e-6)
    small = SinePositionEncoding2D(positions="normalized")(np.zeros((1, 1, 2, 8), "float32")).numpy()[0]
    large = SinePositionEncoding2D(positions="normalized")(np.zeros((1, 3, 6, 8), "float32")).numpy()[0]
    # Row 0 of a 1-row grid and row 1 of a 3-row grid are both the centre; column 0 of 2 and column 1 of 6
    # are both the first quarter... of width 1/2 vs the cell centred at 1.5/6 = 1/4: equal places.
    np.testing.assert_allclose(small[0, 0, :half], large[1, 0, :half], atol=1e-6)
    np.testing.assert_allclose(small[0, 0, half:], large[0, 1, half:], atol=1e-6)
    # Index positions go on growing with the grid instead.
    index_code = SinePositionEncoding2D()(np.zeros((1, 3, 6, 8), "float32")).numpy()[0]
    assert not np.allclose(
        index_code[1, 0, :half], SinePositionEncoding2D()(np.zeros((1, 1, 2, 8), "float32")).numpy()[0][0, 0, :half]
    )


def test_position_encoding_choice_is_checked_and_round_trips():
    with pytest.raises(ValueError, match="positions"):
        SinePositionEncoding2D(positions="learned")
    layer = ContextAugmentationEncoder(16, num_heads=4, position_encoding="normalized")
    clone = ContextAugmentationEncoder.from_config(layer.get_config())
    assert clone.position_encoding.positions == "normalized"
    inputs = np.random.default_rng(0).normal(size=(1, 3, 5, 8)).astype("float32")
    layer.build(inputs.shape)
    clone.build(inputs.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(inputs).numpy(), layer(inputs).numpy(), atol=1e-6)
    index_layer = ContextAugmentationEncoder(16, num_heads=4)
    index_layer.build(inputs.shape)
    index_layer.set_weights(layer.get_weights())
    assert not np.allclose(index_layer(inputs).numpy(), layer(inputs).numpy(), atol=1e-4)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_transformer_encoder_gives_its_dtype_policy_to_every_sublayer_also_from_config(policy):
    """Built or rebuilt with the global policy float32, every sublayer (the MLP's Sequential and
    Dropout too) follows the encoder's own policy, so that a mixed-precision model reloads intact."""
    layer = ContextAugmentationEncoder(16, num_heads=4, dtype=policy)
    clone = ContextAugmentationEncoder.from_config(layer.get_config())
    for encoder in (layer, clone):
        policies = {sublayer.name: sublayer.dtype_policy.name for sublayer in encoder._flatten_layers()}
        assert set(policies.values()) == {policy}, policies
        assert {"block0_mlp", "dropout1", "dropout2"} <= set(policies)
    inputs = np.random.default_rng(0).normal(size=(1, 2, 2, 8)).astype("float32")
    assert clone(inputs).dtype == policy.split("_")[1]


@pytest.mark.parametrize("bins", [1, 2, 3, 6])
def test_adaptive_average_pool_uses_pytorch_bin_edges_and_has_a_gradient(bins):
    from hfgd_tf.layers.cae import adaptive_average_pool

    images = np.random.default_rng(bins).normal(size=(2, 7, 5, 3)).astype("float32")
    expected = np.zeros((2, bins, bins, 3), "float32")
    for i in range(bins):
        for j in range(bins):
            # torch.nn.AdaptiveAvgPool2d: bin i spans floor(i * n / bins) .. ceil((i + 1) * n / bins).
            top, bottom = (i * 7) // bins, -(-((i + 1) * 7) // bins)
            left, right = (j * 5) // bins, -(-((j + 1) * 5) // bins)
            expected[:, i, j] = images[:, top:bottom, left:right].mean(axis=(1, 2))
    inputs = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        pooled = adaptive_average_pool(inputs, bins)
        total = tf.reduce_sum(pooled)
    np.testing.assert_allclose(pooled.numpy(), expected, rtol=1e-5, atol=1e-6)
    # Every position lies in at least one bin, so every input gets a gradient.
    gradient = tape.gradient(total, inputs).numpy()
    assert (gradient > 0).all()
    # Unknown spatial sizes (models are built for [B, None, None, 3] images) give the same bins.
    dynamic = tf.function(
        lambda x: adaptive_average_pool(x, bins), input_signature=[tf.TensorSpec([None, None, None, 3])]
    )
    np.testing.assert_allclose(dynamic(inputs).numpy(), expected, rtol=1e-5, atol=1e-6)
