import dataclasses
import json

from hfgd_tf.data import DataConfig
from hfgd_tf.train.checkpoints import RUN_CONFIG, read_run_config, write_run_config
from tests.conftest import tiny_model_config


def test_run_config_round_trips(tmp_path):
    model = tiny_model_config(upsampler_num_channels=12)
    data = DataConfig(dataset="camvid", data_dir="/data/camvid")
    write_run_config(str(tmp_path), model=model, data=data)
    assert read_run_config(str(tmp_path))[:2] == (model, data)


def test_a_run_from_before_the_position_encoding_field_keeps_index_positions(tmp_path):
    """Old run directories keep their CAE's index encoding explicitly, not through the field's default
    (which may change)."""
    model = dataclasses.asdict(tiny_model_config())
    del model["cae_position_encoding"]
    data = dataclasses.asdict(DataConfig(dataset="camvid", data_dir="/data/camvid"))
    (tmp_path / RUN_CONFIG).write_text(json.dumps({"model": model, "data": data}))
    config, _, content = read_run_config(str(tmp_path))
    assert config.cae_position_encoding == "index" and content["model"]["cae_position_encoding"] == "index"
    write_run_config(
        str(tmp_path),
        model=tiny_model_config(cae_position_encoding="normalized"),
        data=DataConfig(dataset="camvid", data_dir="/d"),
    )
    assert read_run_config(str(tmp_path))[0].cae_position_encoding == "normalized"


def test_a_run_from_before_the_head_width_field_keeps_its_d_wide_head(tmp_path):
    model = dataclasses.asdict(tiny_model_config(num_channels=32))
    del model["upsampler_num_channels"]
    data = dataclasses.asdict(DataConfig(dataset="camvid", data_dir="/data/camvid"))
    (tmp_path / RUN_CONFIG).write_text(json.dumps({"model": model, "data": data}))
    config, _, _ = read_run_config(str(tmp_path))
    assert config.upsampler_num_channels == 32 and config.upsampler_width == 32


def test_a_run_without_best_weights_names_the_command_line_flag(tmp_path):
    import pytest

    from hfgd_tf.train.checkpoints import resolve_checkpoint

    with pytest.raises(ValueError, match="use --checkpoint=latest"):
        resolve_checkpoint(str(tmp_path), "best")
