"""Checkpoint files under faults and attack: nothing runs, memory stays flat, every bad file is one line and exit 2.

``torch2ms convert-ckpt`` reads what users download. Each attack below carries a payload that would create a file if
it ran; each damaged file (truncated at many points, bytes flipped, wrong magic, empty) must give exit status 2 and
one line naming the file and what is wrong with it, never a traceback or status 1 ("mismatch"). Data bytes flipped in
formats without a checksum (legacy ``.pt``, ``.safetensors``, a ``.ckpt`` written without CRC) cannot be told from
real values: they are the only corruptions that load.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("mindspore")
import mindspore as ms
import torch

from porting import convert_checkpoint
from porting.cli import main
from tests._helpers.subproc import run_json


def _state():
    g = torch.Generator().manual_seed(0)
    return {"w": torch.rand(32, 32, generator=g), "b": torch.zeros(32), "n": torch.tensor(3)}


def _cli(capfd, *argv):
    code = main(list(argv))
    out, err = capfd.readouterr()
    return code, out, [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("[WARNING] ME(")]


# ----------------------------------------------------------------------------- item 9: a corpus of damaged files


def _originals(folder):
    sd = _state()
    torch.save(sd, str(folder / "zip.pt"))
    torch.save(sd, str(folder / "legacy.pt"), _use_new_zipfile_serialization=False)
    from safetensors.torch import save_file

    save_file(sd, str(folder / "st.safetensors"))
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v.numpy())} for k, v in sd.items()], str(folder / "crc.ckpt"),
                       crc_check=True)  # fmt: skip
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v.numpy())} for k, v in sd.items()], str(folder / "plain.ckpt"))
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _damaged(folder):
    """(name, bytes, what the one line must say) for every file that must be refused."""
    cases = []
    for name, data in _originals(folder).items():
        ext = os.path.splitext(name)[1]
        n = len(data)
        for cut in sorted({1, 7, 8, 9, 20, 100, n // 3, n // 2, n - 200, n - 30, n - 22, n - 1}):
            if name == "plain.ckpt" and cut in (n // 3, n // 2, n - 200):
                continue  # a cut on an entry boundary of a CRC-less .ckpt is a valid, shorter checkpoint
            says = "truncat" if ext in (".pt", ".safetensors") else ""  # a cut .ckpt only fails to parse
            cases.append((f"{name}-cut{cut}{ext}", data[:cut], says))
        cases.append((f"{name}-empty{ext}", b"", "empty file (0 bytes)"))
    # wrong magic: other formats under these extensions
    png = b"\x89PNG\r\n\x1a\n" + bytes(200)
    cases += [
        ("png.pt", png, "not a torch checkpoint"),
        ("png.safetensors", png, "not a readable .safetensors"),
        ("png.ckpt", png, "not a readable MindSpore checkpoint"),
        ("text.pt", b"hello world\n" * 20, "torch"),
        ("zip_as.safetensors", (folder / "zip.pt").read_bytes(), "safetensors"),
        ("safetensors_as.ckpt", (folder / "st.safetensors").read_bytes(), "MindSpore checkpoint"),
    ]
    # flipped bytes that must be caught: zip records (CRC32), headers, a .ckpt's CRC, the .safetensors header
    zip_pt = (folder / "zip.pt").read_bytes()
    w_at = zip_pt.index(_state()["w"].numpy().tobytes())  # where the 4 KiB of 'w' are stored
    for where in (0, 1, 2, 3, w_at, w_at + 2000, w_at + 4095, len(zip_pt) - 22):
        cases.append((f"zipflip{where}.pt", _flip(zip_pt, where), ""))
    crc = (folder / "crc.ckpt").read_bytes()
    for where in (0, 5, 30, len(crc) // 2, len(crc) - 40):
        cases.append((f"crcflip{where}.ckpt", _flip(crc, where), ""))
    st = (folder / "st.safetensors").read_bytes()
    for where in (0, 1, 3, 8, 9, 20, 40):
        cases.append((f"stflip{where}.safetensors", _flip(st, where), ""))
    return cases


def _flip(data: bytes, where: int) -> bytes:
    b = bytearray(data)
    b[where] ^= 0xFF
    return bytes(b)


def test_every_damaged_file_is_one_line_and_exit_2(tmp_path, capfd):
    (tmp_path / "orig").mkdir()
    cases = _damaged(tmp_path / "orig")
    assert len(cases) > 80
    failures = []
    for name, blob, words in cases:
        bad = tmp_path / name
        bad.write_bytes(blob)
        for dst in (f"{name}.out.ckpt", f"{name}.out.safetensors", f"{name}.out.pt"):
            if os.path.splitext(name)[1] == os.path.splitext(dst)[1]:
                continue
            code, out, err = _cli(capfd, "convert-ckpt", str(bad), str(tmp_path / dst))
            ok = (code == 2 and len(err) == 1 and err[0].startswith("torch2ms convert-ckpt: error: ")
                  and str(bad) in err[0] and words in err[0] and not (tmp_path / dst).exists())  # fmt: skip
            if not ok:
                failures.append(f"{name} -> {dst}: status {int(code)}: {err[-3:] or out[-200:]}")
    assert not failures, "\n".join(failures)


def test_damaged_files_say_what_is_wrong(tmp_path, capfd):
    (tmp_path / "o").mkdir()
    originals = _originals(tmp_path / "o")
    expected = {
        "a.pt": (originals["zip.pt"][:-30], "damaged zip archive (torch.save's format): "),
        "b.pt": (originals["legacy.pt"][:-30], "unexpected EOF, expected "),
        "c.safetensors": (originals["st.safetensors"][:-30], "the file has "),
        "d.ckpt": (originals["crc.ckpt"][:-5], "not a readable MindSpore checkpoint"),
        "e.ckpt": (
            _flip(originals["crc.ckpt"], len(originals["crc.ckpt"]) // 2),
            "its bytes do not match the CRC32 stored with them",
        ),
    }
    w_at = originals["zip.pt"].index(_state()["w"].numpy().tobytes())
    expected["f.pt"] = (_flip(originals["zip.pt"], w_at + 7), "record 'zip/data/0' does not match its CRC32")
    for name, (blob, words) in expected.items():
        (tmp_path / name).write_bytes(blob)
        code, _, err = _cli(capfd, "convert-ckpt", str(tmp_path / name), str(tmp_path / "x.pth"))
        assert code == 2 and len(err) == 1 and words in err[0], (name, err)


def test_zero_length_entries_convert_where_the_format_holds_them(tmp_path, capfd):
    sd = {"empty": torch.zeros(0), "none": torch.zeros(3, 0), "scalar": torch.tensor(2.5, dtype=torch.float64)}
    torch.save(sd, str(tmp_path / "z.pt"))
    for dst in ("z.safetensors", "z2.pt"):
        code, out, err = _cli(capfd, "convert-ckpt", str(tmp_path / "z.pt"), str(tmp_path / dst))
        assert code == 0 and not err, (dst, out, err)
    back = torch.load(str(tmp_path / "z2.pt"), weights_only=True)
    assert back["none"].shape == (3, 0) and back["empty"].shape == (0,) and float(back["scalar"]) == 2.5
    # mindspore.save_checkpoint drops zero-element entries without a word: refused by name, nothing written
    code, _, err = _cli(capfd, "convert-ckpt", str(tmp_path / "z.pt"), str(tmp_path / "z.ckpt"))
    assert code == 2 and len(err) == 1 and "entry 'empty' has no elements (shape (0,))" in err[0]
    assert not (tmp_path / "z.ckpt").exists() and not list(tmp_path.glob(".*partial*"))
    torch.save({"scalar": sd["scalar"]}, str(tmp_path / "s.pt"))
    assert _cli(capfd, "convert-ckpt", str(tmp_path / "s.pt"), str(tmp_path / "s.ckpt"))[0] == 0
    assert float(ms.load_checkpoint(str(tmp_path / "s.ckpt"))["scalar"].asnumpy()) == 2.5


@pytest.mark.parametrize("dst", ["x.pt", "x.safetensors", "x.ckpt"])
def test_a_destination_that_cannot_be_written_is_one_line(tmp_path, capfd, dst):
    torch.save(_state(), str(tmp_path / "a.pt"))
    target = tmp_path / "no_such_folder" / dst
    code, _, err = _cli(capfd, "convert-ckpt", str(tmp_path / "a.pt"), str(target))
    assert code == 2 and len(err) == 1 and str(target) in err[0], err


def test_our_ckpt_files_carry_a_crc_that_is_checked(tmp_path):
    torch.save(_state(), str(tmp_path / "a.pt"))
    convert_checkpoint(tmp_path / "a.pt", tmp_path / "a.ckpt")
    data = (tmp_path / "a.ckpt").read_bytes()
    assert data[-17:-10] == b"crc_num"
    assert set(ms.load_checkpoint(str(tmp_path / "a.ckpt"))) == {"w", "b", "n"}  # MindSpore reads it as it is
    (tmp_path / "b.ckpt").write_bytes(_flip(data, len(data) // 2))
    with pytest.raises(ValueError, match=r"b\.ckpt: not a readable MindSpore checkpoint: its bytes do not match"):
        convert_checkpoint(tmp_path / "b.ckpt", tmp_path / "b.pt")


# ----------------------------------------------------------------------------- item 9: dtypes a format cannot hold


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_complex_entries_are_refused_for_ckpt_by_name(tmp_path, capfd, dtype):
    torch.save({"w": torch.ones(2), "spectrum": torch.tensor([1 + 2j, 3 - 1j], dtype=getattr(torch, dtype))},
               str(tmp_path / "c.pt"))  # fmt: skip
    code, _, err = _cli(capfd, "convert-ckpt", str(tmp_path / "c.pt"), str(tmp_path / "c.ckpt"))
    assert code == 2 and len(err) == 1 and not (tmp_path / "c.ckpt").exists(), err
    assert f"entry 'spectrum' is {dtype}: a .ckpt cannot hold it" in err[0]
    # .pt keeps it exactly; .safetensors holds complex64 only
    assert _cli(capfd, "convert-ckpt", str(tmp_path / "c.pt"), str(tmp_path / "c2.pt"))[0] == 0
    back = torch.load(str(tmp_path / "c2.pt"), weights_only=True)["spectrum"]
    assert back.dtype == getattr(torch, dtype) and torch.equal(back, torch.tensor([1 + 2j, 3 - 1j], dtype=back.dtype))
    code, _, err = _cli(capfd, "convert-ckpt", str(tmp_path / "c.pt"), str(tmp_path / "c.safetensors"))
    if dtype == "complex64":
        assert code == 0 and not err
    else:
        assert code == 2 and "entry 'spectrum' is complex128, which .safetensors cannot hold" in err[0]


def test_a_complex_ckpt_written_by_mindspore_is_named(tmp_path, capfd):
    ms.save_checkpoint(
        [
            {"name": "w", "data": ms.Tensor(np.ones(2, np.float32))},
            {"name": "z", "data": ms.Tensor(np.array([1 + 1j], np.complex64))},
        ],
        str(tmp_path / "z.ckpt"),
    )
    code, _, err = _cli(capfd, "convert-ckpt", str(tmp_path / "z.ckpt"), str(tmp_path / "z.pt"))
    assert code == 2 and len(err) == 1, err
    assert "entry 'z' is Complex64, which mindspore.load_checkpoint cannot read" in err[0]


@pytest.mark.parametrize("dtype", ["float8_e4m3fn", "float8_e5m2"])
@pytest.mark.parametrize("ext", [".pt", ".safetensors"])
def test_float8_entries_are_a_clear_error(tmp_path, capfd, dtype, ext):
    sd = {"w": torch.ones(2), "q": torch.tensor([0.5, -2.0]).to(getattr(torch, dtype))}
    src = tmp_path / f"f8{ext}"
    if ext == ".pt":
        torch.save(sd, str(src))
    else:
        from safetensors.torch import save_file

        save_file(sd, str(src))
    code, _, err = _cli(capfd, "convert-ckpt", str(src), str(tmp_path / "f8.ckpt"))
    assert code == 2 and len(err) == 1, err
    assert f"entry 'q' is {dtype}, which numpy and a MindSpore .ckpt cannot hold" in err[0] and str(src) in err[0]


def test_lossy_casts_are_named_in_the_report(tmp_path, capfd, monkeypatch):
    torch.save({"weight": torch.tensor([[1e300, 1.0]], dtype=torch.float64),
                "bias": torch.tensor([1 + 2j], dtype=torch.complex64)}, str(tmp_path / "lossy.pt"))  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "lossy_like.py").write_text("import mindspore\n\ndef dense():\n    return mindspore.nn.Dense(2, 1)\n")
    code, out, err = _cli(capfd, "convert-ckpt", str(tmp_path / "lossy.pt"), str(tmp_path / "lossy.ckpt"),
                          "--like", "lossy_like:dense")  # fmt: skip
    assert code == 0, (out, err)
    assert "float64 -> float32; LOSSY: 1 finite value(s) become inf (largest magnitude 1e+300)" in out
    assert "complex64 -> float32; LOSSY: imaginary parts dropped (1 nonzero)" in out
    assert "warning: weight -> weight: float64 -> float32 changes values" in out
    back = ms.load_checkpoint(str(tmp_path / "lossy.ckpt"))
    assert np.isinf(back["weight"].asnumpy()[0, 0]) and back["bias"].asnumpy().tolist() == [1.0]
    # exact casts are not called lossy
    torch.save({"weight": torch.tensor([[0.5, 1.0]], dtype=torch.float64), "bias": torch.zeros(1, dtype=torch.float64)},
               str(tmp_path / "fine.pt"))  # fmt: skip
    code, out, _ = _cli(capfd, "convert-ckpt", str(tmp_path / "fine.pt"), str(tmp_path / "fine.ckpt"),
                        "--like", "lossy_like:dense")  # fmt: skip
    assert code == 0 and "LOSSY" not in out and "float64 -> float32" in out


# ----------------------------------------------------------------------------- item 2: attacks


_ATTACKS = r"""
import contextlib, io, json, os, pickle, resource, struct, sys, zipfile
import numpy as np, torch, mindspore
from porting.cli import main

folder, marker = sys.argv[1], sys.argv[2]

class Payload:
    def __reduce__(self):  # would create the marker file if anything unpickled it
        return (open, (marker, "w"))

def save(name, obj, **kw):
    torch.save(obj, os.path.join(folder, name), **kw)
    return name

def safetensors(name, header, data=b""):
    raw = json.dumps(header).encode()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + data)
    return name

attacks = []
attacks.append(save("pickle_in_zip.pt", {"w": torch.ones(2), "evil": Payload()}))
attacks.append(save("pickle_in_legacy.pt", {"w": torch.ones(2), "evil": Payload()},
                    _use_new_zipfile_serialization=False))
with open(os.path.join(folder, "raw_pickle.pt"), "wb") as f:
    pickle.dump({"evil": Payload()}, f, protocol=2)
attacks.append("raw_pickle.pt")
# path traversal: members naming files outside the archive (nothing is ever extracted)
escape = os.path.join(folder, "escaped.txt")
src = save("traversal.pt", {"w": torch.ones(2)})
with zipfile.ZipFile(os.path.join(folder, src), "a") as zf:
    zf.writestr("../../../../" + escape.lstrip("/"), "pwned")
    zf.writestr(escape, "pwned")
attacks.append(src)
# 1e12 declared elements over 16 bytes of storage (zero strides): materialising them would need 4 TB
attacks.append(save("expanded.pt", {"w": torch.zeros(4).as_strided((1_000_000, 1_000_000), (0, 0))}))
attacks.append(save("expanded_1gb.pt", {"w": torch.zeros(1).expand(2**28)}))  # small enough to be allocated
attacks.append(safetensors("huge_shape.safetensors",
                           {"w": {"dtype": "F32", "shape": [1_000_000, 1_000_000], "data_offsets": [0, 16]}},
                           bytes(16)))
attacks.append(safetensors("overlap.safetensors",
                           {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                            "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12)))
attacks.append(safetensors("out_of_range.safetensors",
                           {"a": {"dtype": "F32", "shape": [2**40], "data_offsets": [0, 2**42]}}, bytes(16)))
# a 100 MB header: the length field says 100_000_001 bytes (above safetensors' limit), or 2**60
for name, length in (("header_100mb.safetensors", 100_000_001), ("header_2e60.safetensors", 2**60)):
    with open(os.path.join(folder, name), "wb") as f:
        f.write(struct.pack("<Q", length) + b"{" + b" " * 64)
    attacks.append(name)
# a .ckpt declaring a 1e12-element shape over 16 bytes
from mindspore.train.checkpoint_pb2 import Checkpoint
proto = Checkpoint()
value = proto.value.add()
value.tag = "w"
value.tensor.dims.extend([1_000_000, 1_000_000])
value.tensor.tensor_type = "Float32"
value.tensor.tensor_content = bytes(16)
with open(os.path.join(folder, "huge_shape.ckpt"), "wb") as f:
    f.write(proto.SerializeToString())
attacks.append("huge_shape.ckpt")

# warm up: everything imported, one good conversion done, before the baseline
save("good.pt", {"w": torch.ones(64, 64)})
assert main(["convert-ckpt", os.path.join(folder, "good.pt"), os.path.join(folder, "good.ckpt")]) == 0
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
results = {}
for name in attacks:
    for dst in ("out.ckpt", "out.pt"):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["convert-ckpt", os.path.join(folder, name), os.path.join(folder, dst)])
        results[f"{name}->{dst}"] = [code, err.getvalue()]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"results": results, "growth_kb": peak - base, "marker": os.path.exists(marker),
                  "escaped": os.path.exists(escape) or os.path.exists("/" + escape.lstrip("/")),
                  "outputs": sorted(n for n in os.listdir(folder) if n.startswith(("out.", ".out.")))}))
"""


def test_attacks_run_nothing_keep_memory_flat_and_are_one_line(tmp_path):
    marker = tmp_path / "payload_ran"
    (tmp_path / "files").mkdir()
    code = _ATTACKS.replace("sys.argv[1], sys.argv[2]", f"{str(tmp_path / 'files')!r}, {str(marker)!r}")
    found = run_json(code, timeout=300)
    assert found["marker"] is False and not marker.exists()  # no payload ran
    assert found["escaped"] is False  # no member was written outside the archive (nor anywhere)
    assert found["outputs"] == []  # nothing converted from any of them
    # peak RSS over all attacks, above the warmed-up baseline (a materialised 1e12-element tensor is 4 TB)
    assert found["growth_kb"] < 64 * 1024, found["growth_kb"]
    for case, (status, err) in found["results"].items():
        lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("[WARNING] ME(")]
        assert status == 2 and len(lines) == 1 and lines[0].startswith("torch2ms convert-ckpt: error: "), (case, err)
        assert case.split("->")[0] in lines[0], (case, lines[0])
    said = {case.split("->")[0]: err for case, (_, err) in found["results"].items()}
    assert (
        "refused it (it holds objects other than tensors: WeightsUnpickler error: Unsupported global"
        in said["pickle_in_zip.pt"]
    )
    assert "refused it (it holds objects other than tensors" in said["pickle_in_legacy.pt"]
    assert "declares 1000000000000 elements of float32 (shape (1000000, 1000000)) over 16 bytes" in said["expanded.pt"]
    assert "declares 268435456 elements of float32 (shape (268435456,)) over 4 bytes" in said["expanded_1gb.pt"]
    assert "above safetensors' 100000000-byte limit" in said["header_100mb.safetensors"]
    assert "needs 4000000000000 bytes, the file holds 16" in said["huge_shape.ckpt"]
