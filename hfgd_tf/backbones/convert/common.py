"""What every converter shares: reading tensors, the name table engine, the report, the output file."""

import dataclasses
import io
import json

import h5py
import numpy as np

from hfgd_tf.backbones.weights import FORMAT, FORMAT_ATTRIBUTE
from hfgd_tf.files import is_file, read_bytes, write_bytes_atomic

# Attribute of a converted `.weights.h5` naming the backbone layout it was converted for (JSON).
LAYOUT_ATTRIBUTE = "hfgd_tf_backbone_layout"
SOURCE_ATTRIBUTE = "hfgd_tf_converted_from"
_STATE_SUFFIXES = ("drop_path_calls",)


def conv_kernel(array):
    """PyTorch `[out, in/groups, kh, kw]` -> Keras `[kh, kw, in/groups, out]`."""
    return np.transpose(array, (2, 3, 1, 0))


def dense_kernel(array):
    """PyTorch Linear `[out, in]` -> Keras Dense `[in, out]`."""
    return np.transpose(array, (1, 0))


def identity(array):
    return array


def read_tensors(path):
    """Reads a PyTorch-style state dict saved as `.safetensors` or `.npz` into `{name: numpy array}`.

    Raises:
        ValueError: missing file or another extension (a `.pth` needs the one-line torch conversion).
    """
    if not is_file(path):
        raise ValueError(f"--source file not found: {path!r}")
    # Read through tf.io.gfile, so that --source may be a gs:// (any tf.io.gfile) path.
    if path.endswith(".safetensors"):
        from safetensors.numpy import load

        return dict(load(read_bytes(path)))
    if path.endswith(".npz"):
        with np.load(io.BytesIO(read_bytes(path)), allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    raise ValueError(
        f"--source must be a .safetensors or .npz state dict for this format. Received: {path!r}. A PyTorch .pth "
        'converts with: python -c "import torch, safetensors.torch as s; '
        "d = torch.load('in.pth', map_location='cpu'); d = d.get('state_dict', d.get('model', d)); "
        "s.save_file({k: v.contiguous() for k, v in d.items()}, 'out.safetensors')\""
    )


def describe_tensors(path):
    """`{dataset path: shape}` of every array in an HDF5 weights file, in file order (for messages)."""
    shapes = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(
            lambda key, item: shapes.__setitem__(key, tuple(item.shape)) if isinstance(item, h5py.Dataset) else None
        )
    return shapes


def strip_prefixes(tensors, prefixes=("module.", "backbone.", "model.", "encoder.")):
    """Drops a wrapper prefix shared by every key (DataParallel `module.`, mmseg `backbone.`...)."""
    for prefix in prefixes:
        if tensors and all(key.startswith(prefix) for key in tensors):
            tensors = {key[len(prefix) :]: value for key, value in tensors.items()}
    return tensors


@dataclasses.dataclass
class ConversionReport:
    """What a conversion did with every tensor.

    Attributes:
        used: list of (source name, target path); a source used twice (a conv bias folded into the
            next BatchNorm's mean) appears once per use.
        ignored: dict {source name: reason} for source tensors deliberately not used (classification head,
            BatchNorm batch counters, buffers our layers recompute).
        fresh: list of target paths no ImageNet checkpoint has (per-stage output norms); they
            keep their initial values.
        state: list of target paths that are training state, not parameters (drop path call counters).
    """

    used: list
    ignored: dict
    fresh: list
    state: list

    def summary(self):
        """Multi-line human-readable account (what `scripts/convert_weights.py` prints)."""
        lines = [
            f"used {len({name for name, _ in self.used})} source tensors; ignored {len(self.ignored)}; "
            f"initialised fresh {len(self.fresh)} target weights; training state {len(self.state)}"
        ]
        reasons = {}
        for name, reason in self.ignored.items():
            reasons.setdefault(reason, []).append(name)
        for reason, names in sorted(reasons.items()):
            shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
            lines.append(f"  ignored ({reason}): {len(names)}: {shown}")
        for path in self.fresh:
            lines.append(f"  initialised fresh (no ImageNet checkpoint has it): {path}")
        return "\n".join(lines)

    def as_dict(self):
        return {
            "used": len({name for name, _ in self.used}),
            "ignored": len(self.ignored),
            "fresh": len(self.fresh),
            "state": len(self.state),
        }


def apply_table(backbone, tensors, table, ignore, source_description):
    """Fills `backbone`'s variables from `tensors` following `table`, refusing anything unaccounted for.

    Args:
        backbone: the target backbone (built).
        tensors: dict {source name: numpy array}.
        table: callable(relative target path) -> (source name, transform) or None (no source: fresh).
            The relative path is the variable path without the leading `<backbone name>_`.
        ignore: callable(source name) -> reason str or None; sources that may stay unused.
        source_description: str for messages (the file name).

    Returns:
        ConversionReport.

    Raises:
        ValueError: a wanted source tensor is missing, a shape differs, or a source tensor is neither used
            nor ignorable (another architecture or an unknown layout); the message lists them.
    """
    prefix = backbone.name + "_"
    plan, fresh, state, missing, mismatched, wanted = [], [], [], [], [], set()
    for variable in backbone.weights:
        path = variable.path
        relative = path[len(prefix) :] if path.startswith(prefix) else path
        if path.endswith(_STATE_SUFFIXES):
            state.append(path)
            continue
        entry = table(relative)
        if entry is None:
            fresh.append(path)
            continue
        source_names, transform = entry
        source_names = (source_names,) if isinstance(source_names, str) else tuple(source_names)
        wanted.update(source_names)
        absent = [name for name in source_names if name not in tensors]
        if absent:
            missing.append(f"{absent[0]} (for {path})")
            continue
        source_shape = tuple(np.shape(tensors[source_names[0]]))
        try:
            array = transform(*[np.asarray(tensors[name]) for name in source_names])
        except ValueError:  # a tensor of another rank (another layer type) cannot be transposed
            array = None
        if array is None or tuple(array.shape) != tuple(variable.shape):
            mismatched.append(f"{source_names[0]} {source_shape} -> {path} {tuple(variable.shape)}")
            continue
        plan.append((source_names, variable, array))
    used_names = {name for names, _, _ in plan for name in names}
    ignored, unknown = {}, []
    for name in sorted(tensors):
        if name in used_names or name in wanted:
            continue
        reason = ignore(name)
        if reason:
            ignored[name] = reason
        else:
            unknown.append(name)
    problems = []
    if missing:
        problems.append(f"{len(missing)} target weights have no source tensor: {_first(missing)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shapes differ: {_first(mismatched)}")
    if unknown:
        problems.append(f"{len(unknown)} source tensors have no place in the target: {_first(unknown)}")
    if problems:
        raise ValueError(
            f"Cannot convert {source_description} into {backbone.name!r} ({type(backbone).__name__} "
            f"{_layout_text(backbone)}): " + "; ".join(problems) + ". Check --format and --backbone (depth, "
            "widths, stem type) against the checkpoint."
        )
    for _, variable, array in plan:
        variable.assign(array.astype(str(variable.dtype)))
    used = [(name, variable.path) for names, variable, _ in plan for name in names]
    return ConversionReport(used=used, ignored=ignored, fresh=fresh, state=state)


def _first(items, limit=6):
    return ", ".join(items[:limit]) + (", ..." if len(items) > limit else "")


def layout_of(backbone):
    """The backbone config keys that decide what the weights compute (the file records them)."""
    config = backbone.get_config()
    layout = {
        key: value
        for key, value in config.items()
        if key
        not in (
            "name",
            "trainable",
            "image_shape",
            "output_stride",
            "first_block_dilation",
            "multi_grid",
            "drop_path_rate",
            "norm",
            "variant",
            "layer_scale_init_value",
        )
    }
    if "norm" in config and type(backbone).__name__ == "ResNetBackbone":
        layout["bn_epsilon"] = config["norm"]["epsilon"]
    layout["class"] = type(backbone).__name__
    return json.loads(json.dumps(layout))


def _layout_text(backbone):
    return json.dumps(layout_of(backbone), sort_keys=True)


def write_converted(backbone, path, source_description):
    """Writes `backbone`'s weights as our by-path `.weights.h5`, with the layout it needs recorded."""
    if not path.endswith(".weights.h5"):
        raise ValueError(f"--output must end in '.weights.h5'. Received: {path!r}")
    # Built in memory and written through tf.io.gfile (any path: local, gs://, ...), under a temporary
    # name renamed at the end, so that a failed write never leaves a half file under the final name.
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        handle.attrs[FORMAT_ATTRIBUTE] = FORMAT
        handle.attrs[LAYOUT_ATTRIBUTE] = json.dumps(layout_of(backbone), sort_keys=True)
        handle.attrs[SOURCE_ATTRIBUTE] = source_description
        for variable in backbone.weights:
            handle.create_dataset(variable.path, data=np.asarray(variable.numpy()))
    return write_bytes_atomic(path, buffer.getvalue())


def read_layout(path):
    """The layout recorded in a converted file, or None for files written otherwise."""
    with h5py.File(io.BytesIO(read_bytes(path)), "r") as handle:
        text = handle.attrs.get(LAYOUT_ATTRIBUTE)
    return json.loads(text) if text else None


def check_layout(backbone, path):
    """Raises ValueError when `path` was converted for another layout than `backbone` has.

    Same-shaped weights load into a ResNet with another padding, stride placement or BN epsilon without
    any shape error, and then compute something else; this check names the differing settings.
    """
    recorded = read_layout(path)
    if recorded is None:
        return
    current = layout_of(backbone)
    differing = sorted(
        f"{key}: file {recorded.get(key)!r} vs model {current.get(key)!r}"
        for key in set(recorded) | set(current)
        if recorded.get(key) != current.get(key)
    )
    if differing:
        raise ValueError(
            f"Backbone weights {path!r} were converted for another layout than {backbone.name!r} has ("
            + "; ".join(differing)
            + "). Build the backbone with the settings the converter used (see docs/flags.md: backbone_padding, "
            "backbone_bn_epsilon, backbone_stem_type, backbone_stride_in_1x1...) or convert again."
        )
