# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a WAL record says: its block references and the few record types a rewind
must understand whole (checkpoints, file and database creation/removal, relation
map updates, segment switches).

A record is a 24-byte header, then a list of fragment headers (block references,
origin, top-level xid, main-data length), then the payloads in the same order,
main data last. `decode_record` checks that the lengths add up exactly, as
PostgreSQL does, so a damaged record is an error rather than a wrong answer.
"""

from __future__ import annotations

import struct
from typing import NamedTuple, Optional

from ..pg.controlfile import CheckPoint
from ..pg.datadir import BLCKSZ
from ..errors import WalError
from ..pg.lsn import format_lsn
from ..pg.versions import MajorFormat

XLR_SPECIAL_REL_UPDATE = 0x01
XLR_MAX_BLOCK_ID = 32
XLR_BLOCK_ID_DATA_SHORT = 255
XLR_BLOCK_ID_DATA_LONG = 254
XLR_BLOCK_ID_ORIGIN = 253
XLR_BLOCK_ID_TOPLEVEL_XID = 252
BKPBLOCK_FORK_MASK = 0x0F
BKPBLOCK_HAS_IMAGE = 0x10
BKPBLOCK_HAS_DATA = 0x20
BKPBLOCK_WILL_INIT = 0x40
BKPBLOCK_SAME_REL = 0x80

MAIN_FORKNUM = 0
FORK_NAMES = ("main", "fsm", "vm", "init")

RM_XLOG_ID = 0
RM_XACT_ID = 1
RM_SMGR_ID = 2
RM_DBASE_ID = 4
RM_TBLSPC_ID = 5
RM_RELMAP_ID = 7
RMGR_NAMES = ("XLOG", "Transaction", "Storage", "CLOG", "Database", "Tablespace",
              "MultiXact", "RelMap", "Standby", "Heap2", "Heap", "Btree", "Hash", "Gin",
              "Gist", "Sequence", "SPGist", "BRIN", "CommitTs", "ReplicationOrigin",
              "Generic", "LogicalMessage")

# XLOG resource manager infos
XLOG_CHECKPOINT_SHUTDOWN = 0x00
XLOG_CHECKPOINT_ONLINE = 0x10
XLOG_SWITCH = 0x40
XLOG_PARAMETER_CHANGE = 0x60
XLOG_FPW_CHANGE = 0x80
XLOG_CHECKPOINT_REDO = 0xE0
# Storage
XLOG_SMGR_CREATE = 0x10
XLOG_SMGR_TRUNCATE = 0x20
# RelMap
XLOG_RELMAP_UPDATE = 0x00
# Transaction (the low bits of the rmgr nibble; 0x80 is XLOG_XACT_HAS_INFO)
XLOG_XACT_OPMASK = 0x70
XACT_DROPS_FILES = (0x00, 0x20, 0x30, 0x40)  # commit, abort, commit/abort prepared

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_BLOCK_HEAD = struct.Struct("<BH")          # fork_flags, data_length
_IMAGE_HEAD = struct.Struct("<HHB")         # length, hole_offset, bimg_info
_RELFILE_BLOCK = struct.Struct("<IIII")     # spc, db, rel, blkno


class BlockRef(NamedTuple):
    block_id: int
    fork: int
    spc: int
    db: int
    rel: int
    blkno: int
    has_image: bool
    apply_image: bool
    will_init: bool
    image_len: int
    hole_offset: int
    hole_length: int
    bimg_info: int
    data_len: int


class Record(NamedTuple):
    """A decoded record."""

    lsn: int
    end_lsn: int
    tot_len: int
    xid: int
    prev: int
    info: int
    rmid: int
    blocks: tuple
    main_data: bytes
    origin: Optional[int]
    toplevel_xid: Optional[int]

    @property
    def rmgr_name(self) -> str:
        if self.rmid < len(RMGR_NAMES):
            return RMGR_NAMES[self.rmid]
        return "custom%03d" % self.rmid


def _bad(lsn, what):
    return WalError("invalid WAL record at %s: %s." % (format_lsn(lsn), what),
                    code="wal_corrupt", lsn=format_lsn(lsn))


# Sizes of the parts of a record (xlogrecord.h), in the order they come.
SIZE_OF_RECORD_HEADER = 24      # SizeOfXLogRecord
SIZE_OF_BLOCK_HEADER = 4        # block id, fork flags, data length
SIZE_OF_IMAGE_HEADER = 5        # image length, hole offset, bimg_info
SIZE_OF_HOLE_LENGTH = 2         # hole length, only for a compressed image with a hole
SIZE_OF_RELFILE = 12            # tablespace, database, relation
SIZE_OF_BLOCKNO = 4
SIZE_OF_DATA_SHORT = 2          # XLR_BLOCK_ID_DATA_SHORT, one byte of length
SIZE_OF_DATA_LONG = 5           # XLR_BLOCK_ID_DATA_LONG, four bytes of length
SIZE_OF_ORIGIN = 3              # XLR_BLOCK_ID_ORIGIN, RepOriginId
SIZE_OF_TOPLEVEL_XID = 5        # XLR_BLOCK_ID_TOPLEVEL_XID, TransactionId
# Fork-flag bits that must all be clear for a block reference to be plain: main fork,
# no image, relation given in full (BKPBLOCK_HAS_DATA and BKPBLOCK_WILL_INIT may be set).
NOT_PLAIN = BKPBLOCK_FORK_MASK | BKPBLOCK_HAS_IMAGE | BKPBLOCK_SAME_REL
# The shape of most records: one plain block reference, then short main data.
_ONE_BLOCK = struct.Struct("<BBHIIIIBB")   # id, flags, data len, spc, db, rel, blkno, 255, len
SIZE_OF_ONE_BLOCK_RECORD = (SIZE_OF_RECORD_HEADER + SIZE_OF_BLOCK_HEADER + SIZE_OF_RELFILE
                            + SIZE_OF_BLOCKNO + SIZE_OF_DATA_SHORT)
# ... and one more plain reference to the same relation (BKPBLOCK_SAME_REL): an update
# that moves a tuple to another page.
_TWO_BLOCKS = struct.Struct("<BBHIIIIBBHIBB")   # the above, then id 1, flags, len, blkno
SIZE_OF_TWO_BLOCK_RECORD = SIZE_OF_ONE_BLOCK_RECORD + SIZE_OF_BLOCK_HEADER + SIZE_OF_BLOCKNO


def fragment_reader(fmt: MajorFormat, on_block, extras=None, known=None):
    """The one decoder of a record's fragment headers, for the changed-block scan (hot:
    called for every record) and for decode_record (rare records, tests).

    The function returned, read(lsn, end_lsn, buf, off, tot_len, xid, prev, info, rmid)
    (the arguments WalReader.walk gives its visitor, so the scan hands it over as is),
    reads the record at buf[off:off + tot_len], calls on_block(fork_flags, spc, db, rel, blkno, block_id,
    data_len, image) for each block reference (image: None, or (length, hole offset,
    hole length, bimg_info)) and returns the length of its main data; the list
    `extras`, when given, receives [origin, top-level xid] (None when absent). With
    `known`, a set of (rel, blkno, db, spc) the caller already has, a main-fork
    reference to one of them is not reported again (the scan: hot pages are touched
    by record after record).
    It checks what PostgreSQL's DecodeXLogRecord checks -- ascending block ids, data
    flags that match lengths, image holes that make sense, lengths that add up
    exactly -- and raises WalError (wal_corrupt) saying what does not."""
    image_flags = fmt.image
    has_hole_bit, compressed_bits = image_flags.has_hole, image_flags.compressed_mask
    toplevel_ok = fmt.toplevel_xid_block
    one_block, two_blocks = _ONE_BLOCK.unpack_from, _TWO_BLOCKS.unpack_from
    block_head, image_head = _BLOCK_HEAD.unpack_from, _IMAGE_HEAD.unpack_from
    rel_block, u16, u32 = _RELFILE_BLOCK.unpack_from, _U16.unpack_from, _U32.unpack_from
    short_record = SIZE_OF_RECORD_HEADER + SIZE_OF_DATA_SHORT

    def read(lsn, _end_lsn, buf, off, tot_len, _xid, _prev, _info, _rmid):
        pos = off + SIZE_OF_RECORD_HEADER
        if tot_len == SIZE_OF_RECORD_HEADER:
            return 0
        first = buf[pos]
        if first == XLR_BLOCK_ID_DATA_SHORT:
            if buf[pos + 1] + short_record == tot_len:
                return buf[pos + 1]          # main data only
        elif not first and tot_len >= SIZE_OF_ONE_BLOCK_RECORD:
            _bid, flags, data_len, spc, db, rel, blkno, next_id, main_len = one_block(buf, pos)
            if flags & NOT_PLAIN or (not data_len) != (not flags & BKPBLOCK_HAS_DATA):
                pass
            elif next_id == XLR_BLOCK_ID_DATA_SHORT:
                if SIZE_OF_ONE_BLOCK_RECORD + data_len + main_len == tot_len:
                    if known is None or (rel, blkno, db, spc) not in known:
                        on_block(flags, spc, db, rel, blkno, 0, data_len, None)
                    return main_len
            elif next_id == 1 and tot_len >= SIZE_OF_TWO_BLOCK_RECORD:
                (_bid, _flags, _len, _spc, _db, _rel, _blk, _id, flags1, len1, blkno1, next_id,
                 main_len) = two_blocks(buf, pos)
                if flags1 & NOT_PLAIN == BKPBLOCK_SAME_REL and next_id == XLR_BLOCK_ID_DATA_SHORT \
                        and SIZE_OF_TWO_BLOCK_RECORD + data_len + len1 + main_len == tot_len \
                        and (not len1) == (not flags1 & BKPBLOCK_HAS_DATA):
                    if known is None or (rel, blkno, db, spc) not in known:
                        on_block(flags, spc, db, rel, blkno, 0, data_len, None)
                    if known is None or (rel, blkno1, db, spc) not in known:
                        on_block(flags1, spc, db, rel, blkno1, 1, len1, None)
                    return main_len
        return read_all(buf, off, pos, off + tot_len, lsn)

    def read_all(buf, off, pos, limit, lsn):
        datatotal = 0
        last_id = -1
        main_len = 0
        origin = toplevel = None
        spc = None
        try:
            while limit - pos > datatotal:
                block_id = buf[pos]
                if block_id <= XLR_MAX_BLOCK_ID:
                    if block_id <= last_id:
                        raise _bad(lsn, "out-of-order block_id %d" % block_id)
                    last_id = block_id
                    fork_flags, data_len = block_head(buf, pos + 1)
                    pos += SIZE_OF_BLOCK_HEADER
                    if (not data_len) != (not fork_flags & BKPBLOCK_HAS_DATA):
                        raise _bad(lsn, "BKPBLOCK_HAS_DATA %s but data length is %d" % (
                            "set" if fork_flags & BKPBLOCK_HAS_DATA else "not set", data_len))
                    datatotal += data_len
                    image = None
                    if fork_flags & BKPBLOCK_HAS_IMAGE:
                        image_len, hole_offset, bimg_info = image_head(buf, pos)
                        pos += SIZE_OF_IMAGE_HEADER
                        has_hole = bimg_info & has_hole_bit
                        compressed = bimg_info & compressed_bits
                        if compressed:
                            if has_hole:
                                hole_length = u16(buf, pos)[0]
                                pos += SIZE_OF_HOLE_LENGTH
                            else:
                                hole_length = 0
                            _check_image(lsn, image_len, hole_offset, hole_length, has_hole,
                                         compressed)
                        elif has_hole:          # the usual image: uncompressed, with a hole
                            hole_length = BLCKSZ - image_len
                            if not hole_offset or image_len == BLCKSZ:
                                _check_image(lsn, image_len, hole_offset, hole_length,
                                             has_hole, compressed)
                        else:
                            hole_length = 0
                            if hole_offset or image_len != BLCKSZ:
                                _check_image(lsn, image_len, hole_offset, hole_length,
                                             has_hole, compressed)
                        datatotal += image_len
                        image = (image_len, hole_offset, hole_length, bimg_info)
                    if fork_flags & BKPBLOCK_SAME_REL:
                        if spc is None:
                            raise _bad(lsn, "BKPBLOCK_SAME_REL set but no previous relation")
                        blkno = u32(buf, pos)[0]
                        pos += SIZE_OF_BLOCKNO
                    else:
                        spc, db, rel, blkno = rel_block(buf, pos)
                        pos += SIZE_OF_RELFILE + SIZE_OF_BLOCKNO
                    if known is None or fork_flags & BKPBLOCK_FORK_MASK \
                            or (rel, blkno, db, spc) not in known:
                        on_block(fork_flags, spc, db, rel, blkno, block_id, data_len, image)
                elif block_id == XLR_BLOCK_ID_DATA_SHORT:
                    main_len = buf[pos + 1]
                    pos += SIZE_OF_DATA_SHORT
                    datatotal += main_len
                    break
                elif block_id == XLR_BLOCK_ID_DATA_LONG:
                    main_len = u32(buf, pos + 1)[0]
                    pos += SIZE_OF_DATA_LONG
                    datatotal += main_len
                    break
                elif block_id == XLR_BLOCK_ID_ORIGIN:
                    origin = u16(buf, pos + 1)[0]
                    pos += SIZE_OF_ORIGIN
                elif block_id == XLR_BLOCK_ID_TOPLEVEL_XID and toplevel_ok:
                    toplevel = u32(buf, pos + 1)[0]
                    pos += SIZE_OF_TOPLEVEL_XID
                else:
                    raise _bad(lsn, "invalid block_id %d" % block_id)
        except (IndexError, struct.error):
            raise _bad(lsn, "fragment headers run past the end of the record") from None
        if limit - pos != datatotal:
            raise _bad(lsn, "record length %d does not match its fragments (%d header + %d "
                       "data)" % (limit - off, pos - off, datatotal))
        if extras is not None:
            extras[:] = origin, toplevel
        return main_len

    return read


_RELFILE = struct.Struct("<III")             # spc, db, rel


def first_relation_reader(fmt: MajorFormat):
    """relation(buf, off): (spc, db, rel) of the first block reference of the record at
    buf[off:], or None when it has none. For a record the fragment reader has already
    checked (the discarded-work count reads the relation of every heap record after
    it): only the headers before the relation are stepped over. The first reference
    never has BKPBLOCK_SAME_REL."""
    has_hole_bit, compressed_bits = fmt.image.has_hole, fmt.image.compressed_mask
    relfile = _RELFILE.unpack_from

    def relation(buf, off):
        pos = off + SIZE_OF_RECORD_HEADER
        if buf[pos] > XLR_MAX_BLOCK_ID:
            return None
        flags = buf[pos + 1]
        pos += SIZE_OF_BLOCK_HEADER
        if flags & BKPBLOCK_HAS_IMAGE:
            bimg_info = buf[pos + 4]
            pos += SIZE_OF_IMAGE_HEADER
            if bimg_info & compressed_bits and bimg_info & has_hole_bit:
                pos += SIZE_OF_HOLE_LENGTH
        return relfile(buf, pos)

    return relation


def _check_image(lsn, image_len, hole_offset, hole_length, has_hole, compressed):
    """Raise when an image header does not make sense (as DecodeXLogRecord checks)."""
    if has_hole and (hole_offset == 0 or hole_length == 0 or image_len == BLCKSZ):
        raise _bad(lsn, "image with a hole of offset %d length %d, image length %d"
                   % (hole_offset, hole_length, image_len))
    if not has_hole and (hole_offset or hole_length):
        raise _bad(lsn, "image without a hole flag has hole offset %d" % hole_offset)
    if compressed and image_len == BLCKSZ:
        raise _bad(lsn, "compressed image of full block length")
    if not has_hole and not compressed and image_len != BLCKSZ:
        raise _bad(lsn, "uncompressed image without a hole of length %d" % image_len)


def decode_record(raw, fmt: MajorFormat) -> Record:
    """Decode a RawRecord's fragment headers; raise WalError when they do not add up."""
    blocks = []
    apply_bit = fmt.image.apply

    def on_block(fork_flags, spc, db, rel, blkno, block_id, data_len, image):
        image_len, hole_offset, hole_length, bimg_info = image or (0, 0, 0, 0)
        blocks.append(BlockRef(block_id, fork_flags & BKPBLOCK_FORK_MASK, spc, db, rel, blkno,
                               image is not None, bool(bimg_info & apply_bit),
                               bool(fork_flags & BKPBLOCK_WILL_INIT), image_len, hole_offset,
                               hole_length, bimg_info, data_len))

    data, tot_len = raw.data, raw.tot_len
    extras = [None, None]
    main_len = fragment_reader(fmt, on_block, extras)(
        raw.lsn, raw.end_lsn, data, 0, tot_len, raw.xid, raw.prev, raw.info, raw.rmid)
    origin, toplevel = extras
    main = bytes(data[tot_len - main_len:tot_len]) if main_len else b""
    return Record(raw.lsn, raw.end_lsn, tot_len, raw.xid, raw.prev, raw.info, raw.rmid,
                  tuple(blocks), main, origin, toplevel)


# --- records a rewind must understand whole -----------------------------------

def is_checkpoint(record) -> bool:
    """A shutdown or online checkpoint record (not 17+'s CHECKPOINT_REDO marker)."""
    return record.rmid == RM_XLOG_ID and record.info & 0xF0 in (
        XLOG_CHECKPOINT_SHUTDOWN, XLOG_CHECKPOINT_ONLINE)


def changes_full_page_writes(record) -> bool:
    """A record after which pages may be changed without a full-page image although the
    checkpoint before said full_page_writes = on: XLOG_FPW_CHANGE (full_page_writes
    reloaded), or XLOG_PARAMETER_CHANGE (a restart with other settings; with wal_level
    minimal FPW_CHANGE is not logged at all)."""
    return record.rmid == RM_XLOG_ID and record.info & 0xF0 in (XLOG_FPW_CHANGE,
                                                                XLOG_PARAMETER_CHANGE)


def checkpoint_of(record: Record, fmt: MajorFormat) -> CheckPoint:
    if len(record.main_data) < fmt.checkpoint_size:
        raise _bad(record.lsn, "checkpoint record with %d bytes of data" % len(record.main_data))
    return CheckPoint.parse(record.main_data, fmt.control_layout)


class FileEvent(NamedTuple):
    """A record that creates, truncates or removes files outside block references."""

    lsn: int
    kind: str          # create_file, truncate_file, create_database, drop_database, relmap
    spc: int
    db: int
    rel: int = 0
    fork: int = 0
    blkno: int = 0
    detail: tuple = ()


def file_event(record: Record, fmt: MajorFormat) -> Optional[FileEvent]:
    """The file-level change a record makes, or None."""
    rmid, rminfo, data = record.rmid, record.info & 0xF0, record.main_data
    try:
        if rmid == RM_SMGR_ID and rminfo == XLOG_SMGR_CREATE:
            spc, db, rel, fork = struct.unpack_from("<IIIi", data)
            return FileEvent(record.lsn, "create_file", spc, db, rel, fork)
        if rmid == RM_SMGR_ID and rminfo == XLOG_SMGR_TRUNCATE:
            blkno, spc, db, rel, flags = struct.unpack_from("<IIIIi", data)
            return FileEvent(record.lsn, "truncate_file", spc, db, rel, 0, blkno, (flags,))
        if rmid == RM_DBASE_ID:
            dbase = fmt.dbase
            if rminfo == dbase.create_file_copy:
                db, spc, src_db, src_spc = struct.unpack_from("<IIII", data)
                return FileEvent(record.lsn, "create_database", spc, db,
                                 detail=("file_copy", src_db, src_spc))
            if dbase.create_wal_log is not None and rminfo == dbase.create_wal_log:
                db, spc = struct.unpack_from("<II", data)
                return FileEvent(record.lsn, "create_database", spc, db, detail=("wal_log",))
            if rminfo == dbase.drop:
                if dbase.drop_lists_tablespaces:
                    db, count = struct.unpack_from("<Ii", data)
                    spcs = struct.unpack_from("<%dI" % count, data, 8)
                else:
                    db, spc = struct.unpack_from("<II", data)
                    spcs = (spc,)
                return FileEvent(record.lsn, "drop_database", spcs[0] if spcs else 0, db,
                                 detail=spcs)
        if rmid == RM_RELMAP_ID and rminfo == XLOG_RELMAP_UPDATE:
            db, spc = struct.unpack_from("<II", data)
            return FileEvent(record.lsn, "relmap", spc, db)
    except struct.error:
        raise _bad(record.lsn, "%s record with %d bytes of data is too short"
                   % (record.rmgr_name, len(data))) from None
    return None


def modifies_files_unknowably(record, fmt: MajorFormat) -> bool:
    """True for a record flagged XLR_SPECIAL_REL_UPDATE that a rewind does not know:
    it changes relation files in a way its block references do not describe."""
    if not record.info & XLR_SPECIAL_REL_UPDATE:
        return False
    rmid, rminfo = record.rmid, record.info & 0xF0
    if rmid in (RM_SMGR_ID, RM_DBASE_ID):
        return False
    if rmid == RM_XACT_ID and rminfo & XLOG_XACT_OPMASK in XACT_DROPS_FILES:
        return False
    return True
