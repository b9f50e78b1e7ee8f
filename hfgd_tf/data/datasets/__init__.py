"""One module per dataset: its `INFO` (classes, ignore label, colours, crops), how its official layout
lists `(name, image, label)` samples per split, and the raw-label -> train-id table applied at conversion.

A new dataset is one small module here plus one line in `hfgd_tf.data.registry`.
"""
