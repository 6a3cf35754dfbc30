# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving many byte ranges from a server: batching, COPY's binary format, and running
batches over several connections at once with bounded memory."""

from __future__ import annotations

import queue
import struct
import threading

from ..errors import SourceError

_END = object()


def batches_of(requests, max_requests: int, max_bytes: int, size=lambda request: request[2]):
    """(path, offset, length) requests grouped into batches that bound the memory their
    answers take (or the bytes `size` says each item costs)."""
    batch, total = [], 0
    for request in requests:
        batch.append(request)
        total += size(request)
        if len(batch) >= max_requests or total >= max_bytes:
            yield batch
            batch, total = [], 0
    if batch:
        yield batch


def in_parallel(batches, workers):
    """Apply one of `workers` (callables, one per connection) to each batch, in threads;
    yield the results as they come. The first error stops everything and is raised.
    At most one batch per worker waits in each direction: memory stays bounded."""
    work = queue.Queue(maxsize=len(workers))
    done = queue.Queue(maxsize=len(workers))
    stop = threading.Event()

    def feed():
        try:
            for batch in batches:
                if not _put(work, batch, stop):
                    return
        except Exception as exc:  # a bad request list: report it, end the workers
            _put(done, exc, stop)
        for _unused in workers:
            _put(work, _END, stop)

    def serve(worker):
        while not stop.is_set():
            try:
                batch = work.get(timeout=0.2)
            except queue.Empty:
                continue
            if batch is _END:
                break
            try:
                _put(done, worker(batch), stop)
            except Exception as exc:
                _put(done, exc, stop)
                return
        _put(done, _END, stop)

    threads = [threading.Thread(target=feed, daemon=True)]
    threads += [threading.Thread(target=serve, args=(worker,), daemon=True) for worker in workers]
    for thread in threads:
        thread.start()
    finished = 0
    try:
        while finished < len(workers):
            item = done.get()
            if item is _END:
                finished += 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)


def _put(target_queue, item, stop) -> bool:
    while not stop.is_set():
        try:
            target_queue.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


class BinaryRows:
    """A file-like sink for COPY ... TO STDOUT (FORMAT binary) of (text, int8, bytea)
    rows, parsed as the data arrives.

    psycopg2 hands over one CopyData message (one row, usually) per write(), as a bytes
    object of its own: rows wholly inside it are kept as views of it, not copied (a
    whole-file copy moves gigabytes through here); only a row split across messages is
    gathered in a buffer."""

    _SIGNATURE = b"PGCOPY\n\xff\r\n\x00"

    def __init__(self):
        self.rows = []
        self._buffer = bytearray()
        self._header_done = False

    def write(self, data):
        if self._buffer or not isinstance(data, bytes):
            self._buffer += data
            del self._buffer[:self._parse(self._buffer, copy=True)]
        else:
            used = self._parse(data, copy=False)
            if used < len(data):
                self._buffer += memoryview(data)[used:]
        return len(data)

    def _parse(self, buf, copy):
        """Rows complete in buf are added; returns how many bytes they (and the header)
        took. copy: buf will change, so values are copied out of it."""
        position = 0
        if not self._header_done:
            if len(buf) < 19:
                return 0
            if bytes(buf[:11]) != self._SIGNATURE:
                raise SourceError("the source sent an unexpected COPY stream.",
                                  code="source_protocol")
            position = 19 + struct.unpack_from(">i", buf, 15)[0]
            self._header_done = True
        view = memoryview(buf)
        try:
            while len(buf) - position >= 2:
                fields = struct.unpack_from(">h", buf, position)[0]
                if fields == -1:
                    position += 2
                    break
                row, used = self._row(buf, view, position + 2, fields, copy)
                if row is None:
                    break
                self.rows.append(row)
                position = used
        finally:
            if copy:
                view.release()      # so the buffer may be cut
        return position

    @staticmethod
    def _row(buf, view, position, fields, copy):
        values = []
        for _unused in range(fields):
            if len(buf) - position < 4:
                return None, position
            length = struct.unpack_from(">i", buf, position)[0]
            position += 4
            if length == -1:
                values.append(None)
                continue
            if len(buf) - position < length:
                return None, position
            piece = view[position:position + length]
            values.append(bytes(piece) if copy else piece)
            position += length
        path, begin, chunk = values
        return (bytes(path).decode("utf-8", "surrogateescape"),
                struct.unpack(">q", begin)[0], chunk), position
