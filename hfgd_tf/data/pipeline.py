"""tf.data input pipelines: TFRecord shards -> decoded, augmented, batched `(images, labels)`.

Training elements are `images` float32 `[B, crop_h, crop_w, 3]` in [0, 255] and `labels` int32
`[B, crop_h, crop_w]` (ignore label where there is no supervision). Evaluation elements keep the
original resolution (padded bottom/right to the eval crop, if set, with the ignore label). Records with
`label_format="raw"` labels are remapped to train ids right after decoding, before any padding.
`data_source="tfds"` reads a built TFDS dataset instead of the shards (`hfgd_tf.data.tfds_source`); the
rest of the pipeline is the same.
"""

import os

import tensorflow as tf

from hfgd_tf.data import augment
from hfgd_tf.data.records import to_train_ids
from hfgd_tf.data.registry import get_dataset_spec
from hfgd_tf.data.tfrecord import list_shards, parse_example, read_manifest


def _read_records(config, split, file_order_seed=None):
    """The split's encoded records in a fixed order; with `file_order_seed` (int64 `[2]`), the shard
    files are read in an order shuffled statelessly by that seed (TFRecords only: a TFDS build is read
    in its own order, and the training stream shuffles its records in seeded blocks either way)."""
    if config.data_source == "tfds":
        from hfgd_tf.data import tfds_source

        return tfds_source.read_encoded(config, split, shuffle_files=False)
    files = tf.constant(list_shards(config.data_dir, split))
    if file_order_seed is not None:
        files = tf.random.experimental.stateless_shuffle(files, seed=file_order_seed)
    return tf.data.Dataset.from_tensor_slices(files).interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type=config.compression),
        cycle_length=min(int(files.shape[0]), 8),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def _decoder(config):
    """`record -> (image float32 [H, W, 3], label int32 [H, W] of train ids)` for `config`."""
    if config.data_source == "tfds":
        from hfgd_tf.data import tfds_source

        return tfds_source.decoder(config)
    table = get_dataset_spec(config.dataset).label_table if config.label_format == "raw" else None

    def decode(serialized):
        image, label = parse_example(serialized)
        if table is not None:
            label = to_train_ids(label, table, config.dataset)
        return tf.cast(image, tf.float32), label

    return decode


def count_records(config, split):
    """Number of records in `split`: the manifest's count when its shard list matches (TFDS: the
    build's split info), else counted by reading the raw records (no decoding)."""
    if config.data_source == "tfds":
        from hfgd_tf.data import tfds_source

        builder = tfds_source.load_builder(config)
        return int(builder.info.splits[tfds_source.tfds_split(config, split, builder)].num_examples)
    files = list_shards(config.data_dir, split)
    manifest = read_manifest(config.data_dir) or {}
    entry = manifest.get("splits", {}).get(split, {})
    listed = sorted(shard.get("file") for shard in entry.get("shards", []))
    if "num_examples" in entry and listed == sorted(os.path.basename(f) for f in files):
        return int(entry["num_examples"])
    records = tf.data.TFRecordDataset(files, compression_type=config.compression)
    return int(records.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))


def _options(config):
    options = tf.data.Options()
    options.deterministic = config.deterministic
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return options


def build_train_dataset(config, batch_size, input_context=None, initial_step=0):
    """Infinite training dataset.

    Args:
        config: `DataConfig`.
        batch_size: int. The global batch size.
        input_context: `tf.distribute.InputContext` or None. When given (from
            `strategy.distribute_datasets_from_function`), the dataset yields per-replica batches and
            is sharded across input pipelines (one per worker under MultiWorkerMirroredStrategy, one
            per host on a TPU pod): every pipeline reads the same seeded stream of encoded records and
            keeps, of each global batch, its own contiguous slice of `batch_size / num_pipelines`
            examples, which it alone decodes and augments. The pipelines never overlap, and a global
            batch holds the same examples with the same augmentations on 1 or N workers (each worker
            reads every raw record, but decodes only its share).
        initial_step: int. Training step to resume at. The stream starts at the epoch of that step
            (epochs are shuffled with seeds derived from (seed, epoch)) and skips the records already
            consumed in it without decoding them, so that a resumed run sees exactly the batches an
            uninterrupted run would, after reading at most one epoch of raw records.

    Returns:
        `tf.data.Dataset` of `(images, labels)`.
    """
    per_replica_batch = batch_size
    num_pipelines, pipeline_id = 1, 0
    if input_context is not None:
        per_replica_batch = input_context.get_per_replica_batch_size(batch_size)
        num_pipelines, pipeline_id = input_context.num_input_pipelines, input_context.input_pipeline_id
    # Elements this pipeline takes from each global batch: its replicas' share.
    elements_per_step = batch_size // num_pipelines
    info = config.info
    consumed = initial_step * batch_size  # position in the stream, which every pipeline reads whole
    first_epoch, skip_in_epoch = 0, 0
    if consumed:
        # Resume without reading the consumed epochs: each epoch's file order and shuffle are seeded by
        # (seed, epoch), so the stream restarts at the resumed epoch; only the records consumed in that
        # epoch are read again (raw, not decoded) and skipped.
        first_epoch, skip_in_epoch = divmod(consumed, count_records(config, config.train_split))

    def epoch_records(epoch):
        # Stateless shuffles seeded by (seed, epoch): the file order, then blocks of `shuffle_buffer`
        # records (Dataset.shuffle cannot take a per-epoch seed tensor).
        seed = tf.stack([tf.constant(config.seed, tf.int64), epoch])
        records = _read_records(config, config.train_split, file_order_seed=seed)

        def shuffled_block(block, elements):
            # One permutation for every component (a TFDS example is a dict of encoded image and label).
            size = tf.shape(tf.nest.flatten(elements)[0])[0]
            order = tf.random.experimental.stateless_shuffle(
                tf.range(size), seed=seed + tf.stack([block + 1, 0]) * 1_000_003
            )
            return tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(lambda t: tf.gather(t, order), elements))

        return records.batch(config.shuffle_buffer).enumerate().flat_map(shuffled_block)

    dataset = tf.data.Dataset.range(first_epoch, 2**62).flat_map(epoch_records).skip(skip_in_epoch)
    # Index every element by its position in the stream: its augmentation seed is (seed, index) whatever
    # the parallelism and the number of pipelines.
    dataset = tf.data.Dataset.zip(tf.data.Dataset.range(consumed, 2**62), dataset)
    if num_pipelines > 1:
        # This pipeline's slice of every global batch, chosen before decoding (`consumed` is a whole
        # number of global batches, so slices stay aligned after a resume).
        dataset = dataset.filter(lambda index, _: (index // elements_per_step) % num_pipelines == pipeline_id)

    decode = _decoder(config)

    def parse_and_augment(index, serialized):
        image, label = decode(serialized)
        seed = tf.stack([tf.constant(config.seed, tf.int64), index])
        return augment.augment_for_training(image, label, seed, config, info.ignore_label)

    dataset = dataset.map(parse_and_augment, num_parallel_calls=config.num_parallel_calls)
    dataset = dataset.batch(per_replica_batch, drop_remainder=True)
    return dataset.with_options(_options(config)).prefetch(tf.data.AUTOTUNE)


def build_eval_dataset(config, batch_size=1, input_context=None):
    """One pass over the evaluation split, in file order.

    Args:
        config: `DataConfig`.
        batch_size: int. Global batch size; > 1 needs `eval_crop_height/width` unless all images share
            a size.
        input_context: `tf.distribute.InputContext` or None.

    Returns:
        `tf.data.Dataset` of `(images float32 [B, H, W, 3], labels int32 [B, H, W])`.
    """
    per_replica_batch = batch_size
    dataset = _read_records(config, config.eval_split)
    if input_context is not None:
        per_replica_batch = input_context.get_per_replica_batch_size(batch_size)
        if input_context.num_input_pipelines > 1:
            dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    dataset = dataset.map(_decoder(config), num_parallel_calls=config.num_parallel_calls)
    if config.eval_crop_height and config.eval_crop_width:
        ignore = config.info.ignore_label

        def pad(image, label):
            shape = tf.shape(label)
            fits = tf.debugging.assert_less_equal(
                shape,
                tf.constant([config.eval_crop_height, config.eval_crop_width]),
                message=(
                    f"An eval image is larger than --eval_crop_height/--eval_crop_width "
                    f"({config.eval_crop_height}x{config.eval_crop_width}); raise them to the largest image size"
                ),
            )
            with tf.control_dependencies([fits]):
                return augment.pad_to_size(image, label, config.eval_crop_height, config.eval_crop_width, ignore)

        dataset = dataset.map(pad)
    dataset = dataset.batch(per_replica_batch)
    return dataset.with_options(_options(config)).prefetch(tf.data.AUTOTUNE)
