#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, from the repository's golden files.

    python3 Fuzz/make_seeds.py OUT            # one folder per target under OUT (run by `make fuzz`)
    python3 Fuzz/make_seeds.py --ingot SMELT  # re-make the committed golden/fuzz-ingot/*.ingot

Most seeds are golden files as they are; a few are built here: a small GGUF that carries a
vocabulary (gguf-py), tokenizer.json + NUL + tokenizer_config.json pairs, and tokenizer texts
prefixed with the byte that picks the vocabulary. The Ingot seeds (`smelt convert` outputs of
golden files, and compressible multi-chunk tensors from Fuzz/Sources/ingot-seeds) are rewritten
with an uncompressed header, so that mutations reach the header parser; they are committed (a
few KB) because making them needs a built smelt.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GOLDEN = os.path.join(ROOT, "golden")
INGOT_SEEDS = os.path.join(GOLDEN, "fuzz-ingot")  # committed: making them needs a built smelt
TARGETS = ["gguf", "safetensors", "ingot", "hf-config", "tokenizer-json", "tokenizer"]


def copy(src, out, name=None):
    shutil.copy(src, os.path.join(out, name or os.path.basename(src)))


def put(out, name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


def vocab_gguf(path):
    """A GGUF with golden/tiny/llama's vocabulary and merges, a pre-tokenizer and two tiny tensors."""
    import numpy as np
    import gguf

    tok = json.load(open(os.path.join(GOLDEN, "tiny", "llama", "tokenizer.json"), encoding="utf-8"))
    vocab = sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1])
    tokens = [t for t, _ in vocab]
    types = [1] * len(tokens)
    for added in tok.get("added_tokens", []):
        while len(tokens) <= added["id"]:
            tokens.append(f"[PAD{len(tokens)}]")
            types.append(5)
        tokens[added["id"]] = added["content"]
        types[added["id"]] = 3 if added.get("special") else 4
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(0)
    w.add_eos_token_id(0)
    w.add_add_bos_token(False)
    w.add_tensor("token_embd.weight", np.arange(8, dtype=np.float32).reshape(2, 4))
    q = np.frombuffer(bytes(range(18)) * 2, dtype=np.uint8).reshape(2, 18)
    w.add_tensor("output.weight", q, raw_dtype=gguf.GGMLQuantizationType.Q4_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def seeds(out):
    dirs = {t: os.path.join(out, t) for t in TARGETS}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    g = os.path.join(GOLDEN, "gguf")
    for name in sorted(os.listdir(g)):
        if name.endswith(".gguf"):
            copy(os.path.join(g, name), dirs["gguf"])
    try:
        vocab_gguf(os.path.join(dirs["gguf"], "vocab.gguf"))
    except ImportError as e:
        print(f"make_seeds: no vocabulary GGUF seed ({e}; `make pydeps` installs gguf-py)", file=sys.stderr)
    s = os.path.join(GOLDEN, "safetensors")
    copy(os.path.join(s, "mixed.safetensors"), dirs["safetensors"])
    for name in sorted(os.listdir(os.path.join(s, "sharded"))):
        if name.endswith(".safetensors"):
            copy(os.path.join(s, "sharded", name), dirs["safetensors"])
        else:
            copy(os.path.join(s, "sharded", name), dirs["hf-config"])
    for name in sorted(os.listdir(INGOT_SEEDS)):
        if name.endswith(".ingot"):
            copy(os.path.join(INGOT_SEEDS, name), dirs["ingot"])
    for i, model in enumerate(["gpt2", "llama", "qwen2"]):
        d = os.path.join(GOLDEN, "tiny", model)
        copy(os.path.join(d, "config.json"), dirs["hf-config"], f"{model}.config.json")
        tj = open(os.path.join(d, "tokenizer.json"), "rb").read()
        tc = open(os.path.join(d, "tokenizer_config.json"), "rb").read()
        put(dirs["tokenizer-json"], f"{model}.json", tj)
        put(dirs["tokenizer-json"], f"{model}+config.json", tj + b"\0" + tc)
    strings = json.load(open(os.path.join(GOLDEN, "tokenizer", "strings.json"), encoding="utf-8"))
    texts = [s.encode("utf-8") for s in strings["strings"]] + [bytes.fromhex(h) for h in strings["byte_strings_hex"]]
    for i, text in enumerate(texts):
        # Byte 0 picks the vocabulary (mod 3) and, with its high bit, special-token parsing.
        put(dirs["tokenizer"], f"text{i:02d}", bytes([i % 3 | (0x80 if i % 2 else 0)]) + text)


# --- Ingot seeds -------------------------------------------------------------------------------

P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x85EBCA77C2B2AE63,
                      0x27D4EB2F165667C5)
M = (1 << 64) - 1


def rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M


def xxh64(data, seed=0):
    """XXH64 (the Ingot checksum), written from the algorithm's description."""
    def round_(acc, lane):
        return (rotl((acc + lane * P2) & M, 31) * P1) & M

    def merge(acc, v):
        return ((acc ^ round_(0, v)) * P1 + P4) & M

    n, i = len(data), 0
    if n >= 32:
        v = [(seed + P1 + P2) & M, (seed + P2) & M, seed, (seed - P1) & M]
        while i + 32 <= n:
            for k in range(4):
                v[k] = round_(v[k], struct.unpack_from("<Q", data, i + 8 * k)[0])
            i += 32
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & M
        for k in range(4):
            h = merge(h, v[k])
    else:
        h = (seed + P5) & M
    h = (h + n) & M
    while i + 8 <= n:
        h = (rotl(h ^ round_(0, struct.unpack_from("<Q", data, i)[0]), 27) * P1 + P4) & M
        i += 8
    if i + 4 <= n:
        h = (rotl(h ^ (struct.unpack_from("<I", data, i)[0] * P1) & M, 23) * P2 + P3) & M
        i += 4
    while i < n:
        h = (rotl(h ^ (data[i] * P5) & M, 11) * P1) & M
        i += 1
    h ^= h >> 33
    h = (h * P2) & M
    h ^= h >> 29
    h = (h * P3) & M
    return h ^ (h >> 32)


def raw_header(path):
    """Rewrites an Ingot file's header uncompressed (codec 0), fixing the trailer and checksums."""
    b = bytearray(open(path, "rb").read())
    t = len(b) - 64
    offset, stored, raw, codec = struct.unpack_from("<QQQI", b, t)
    assert offset + stored == t
    header = bytes(b[offset:t])
    if codec == 1:
        header = subprocess.run(["zstd", "-d", "-c"], input=header, capture_output=True, check=True).stdout
    assert len(header) == raw
    trailer = bytearray(b[t:])
    struct.pack_into("<QQQI", trailer, 0, offset, len(header), len(header), 0)
    struct.pack_into("<Q", trailer, 32, xxh64(header))
    struct.pack_into("<Q", trailer, 56, xxh64(bytes(b[:16]) + bytes(trailer[:56])))
    out = bytes(b[:offset]) + header + bytes(trailer)
    open(path, "wb").write(out)


def ingot_seeds(smelt):
    out = INGOT_SEEDS
    os.makedirs(out, exist_ok=True)
    assert xxh64(b"") == 0xEF46DB3751D8E999, "xxh64 self-check"
    with tempfile.TemporaryDirectory() as tmp:
        sources = [
            ("mixed-gguf", os.path.join(GOLDEN, "gguf", "mixed.gguf"), []),
            ("mixed-safetensors", os.path.join(GOLDEN, "safetensors", "mixed.safetensors"), []),
        ]
        for name, src, flags in sources:
            dst = os.path.join(tmp, name + ".ingot")
            subprocess.run([smelt, "convert", src, dst] + flags, check=True, stdout=subprocess.DEVNULL)
            raw_header(dst)
            shutil.copy(dst, os.path.join(out, name + ".ingot"))
            print(f"{name}.ingot: {os.path.getsize(dst)} bytes")
        # Compressible multi-chunk tensors, written by the ingot-seeds tool (IngotWriter with
        # 4 KiB chunks, which the CLI does not offer).
        subprocess.run(["swift", "run", "--package-path", HERE, "ingot-seeds", tmp], check=True)
        for name in ["packed-level3", "packed-level19"]:
            dst = os.path.join(tmp, name + ".ingot")
            raw_header(dst)
            shutil.copy(dst, os.path.join(out, name + ".ingot"))
            print(f"{name}.ingot: {os.path.getsize(dst)} bytes")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--ingot":
        ingot_seeds(os.path.abspath(sys.argv[2]))
    elif len(sys.argv) == 2:
        seeds(sys.argv[1])
    else:
        sys.exit(__doc__)
