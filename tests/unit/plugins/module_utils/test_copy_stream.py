"""COPY's binary format as psycopg2 hands it over: one message per row, or split
anywhere; rows inside one message are kept as views, split rows are gathered."""

import random
import struct

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.source import libpq as libpq_source
from ansible_collections.pgops.rewind.plugins.module_utils.source.bulk import BinaryRows
from ansible_collections.pgops.rewind.plugins.module_utils.errors import SourceError

ROWS = [("base/5/16384", 0, b"\x01" * 8192), ("global/pg_filenode.map", 0, None),
        ("pg_wal/000000010000000000000003", 1 << 20, bytes(range(256)) * 4096),
        ("base/5/t\u00e9", 81920, b""), ("x", 7, b"\x00\xff" * 3)]


def _row(path, begin, chunk):
    out = struct.pack(">h", 3)
    name = path.encode()
    out += struct.pack(">i", len(name)) + name + struct.pack(">iq", 8, begin)
    out += struct.pack(">i", -1) if chunk is None else struct.pack(">i", len(chunk)) + chunk
    return out


HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)


def _received(messages):
    sink = BinaryRows()
    for message in messages:
        assert sink.write(message) == len(message)
    return [(p, b, None if c is None else bytes(c)) for p, b, c in sink.rows]


def test_one_message_per_row_as_the_server_sends_them():
    rows = [_row(*r) for r in ROWS]
    messages = [HEADER + rows[0]] + rows[1:] + [TRAILER]
    assert _received(messages) == ROWS


@pytest.mark.parametrize("seed", range(20))
def test_split_anywhere(seed):
    stream = HEADER + b"".join(_row(*r) for r in ROWS) + TRAILER
    chance = random.Random(seed)
    cuts = sorted(chance.sample(range(1, len(stream)), chance.randint(1, 40)))
    if seed == 0:
        cuts = list(range(1, 200))          # the header and first row byte by byte
    messages = [stream[a:b] for a, b in zip([0] + cuts, cuts + [len(stream)])]
    assert _received(messages) == ROWS


def test_views_survive_later_messages():
    """Rows kept as views of their message stay right while more messages arrive and
    split rows are gathered and cut from the buffer."""
    sink = BinaryRows()
    first = _row(*ROWS[0])
    sink.write(HEADER + first)
    second = _row(*ROWS[2])
    sink.write(second[:100])
    sink.write(second[100:])
    assert bytes(sink.rows[0][2]) == ROWS[0][2] and bytes(sink.rows[1][2]) == ROWS[2][2]


def test_not_a_copy_stream():
    with pytest.raises(SourceError) as caught:
        BinaryRows().write(b"HTTP/1.1 200 OK\r\n\r\nhello")
    assert caught.value.code == "source_protocol"


@pytest.mark.parametrize("connections", [1, 2, 4, 8, 64])
def test_batches_shrink_as_connections_grow(connections):
    """Each connection has a batch under way and one waiting: what they hold together
    stays within FETCH_MEMORY, and a batch still takes one whole-file chunk (1 MB)."""
    size = libpq_source.fetch_batch_bytes(connections)
    assert 1 << 20 <= size <= libpq_source.FETCH_BATCH_BYTES
    assert 2 * connections * size <= libpq_source.FETCH_MEMORY or size == 1 << 20
