"""Benchmarks, each measured in one process and reported as ratios to a peer of the same run (absolute
times depend on the machine). `--suite` picks what is measured; `--suite=X --helpfull` lists its flags.

    python scripts/benchmark.py                                   # --suite=models: writes docs/performance.md
    python scripts/benchmark.py --rows=hfgd_r50_os4,backbone_r50 --runs=3 --output=
    python scripts/benchmark.py --compare_xla                     # also each row under XLA, same process
    python scripts/benchmark.py --mixed_precision=bfloat16 --jit_compile
    python scripts/benchmark.py --suite=deploy --deploy_checkpoint_dir=demo_output/run   # performance.md's deployment section
    python scripts/benchmark.py --suite=stats                     # rewrite docs/model_zoo.md (512x512, 59 classes)
    python scripts/benchmark.py --suite=stats --time --time_runs=5   # also time HFGD-R50-OS4 vs SemanticFPN-R50
    python scripts/benchmark.py --suite=input --dataset=camvid --data_dir=records/camvid --crop_height=352 --crop_width=480
    python scripts/benchmark.py --suite=sources --dataset=camvid --data_dir=records/camvid --tfds_data_dir=tfds_data
    python scripts/benchmark.py --suite=train --dataset=camvid --data_dir=records/camvid --backbone=resnet50

Suites (hfgd_tf/cli/benchmarks/<suite>.py):

    models   HFGD beside its peers (keras-cv's DeepLabV3Plus and SegFormer, our baselines, the bare
             backbone): params, GFLOPs, latency, training step, SavedModel serving, input-pipeline headroom
    deploy   every export format (SavedModel, LiteRT, ONNX Runtime, OpenVINO) beside Keras fp32
    stats    params and GFLOPs of the model zoo; --time adds forward-time ratios
    input    input pipeline images/s (1 and 2 parallel calls) beside the training rate, on real records
             (scripts/convert_tfrecord.py)
    sources  TFRecord vs TFDS input images/s (scripts/build_tfds.py)
    train    training steps/s on 1 vs 2 replicas, evaluation time; takes every scripts/train.py flag
"""

import sys

from absl import app

from hfgd_tf.cli import benchmarks

suite = benchmarks.define_flags(sys.argv)

if __name__ == "__main__":
    app.run(suite.main)
