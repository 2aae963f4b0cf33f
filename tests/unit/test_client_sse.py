"""The incremental SSE parser of the client: whole events out of chunks split anywhere."""

from __future__ import annotations

from penny_client.sse import ServerSentEvent, SSEParser

STREAM = (b": keepalive\n\n"
          b"id: 1-0\nevent: queued\ndata: {\"jobId\": \"j\"}\n\n"
          b"id: 2-0\nevent: stdout\ndata: {\"text\": \"h\xc3\xa9llo\\n\"}\n\n")
EXPECTED = [ServerSentEvent(event="queued", data='{"jobId": "j"}', id="1-0"),
            ServerSentEvent(event="stdout", data='{"text": "h\u00e9llo\\n"}', id="2-0")]


def feed_all(parser: SSEParser, chunks: list[bytes]) -> list[ServerSentEvent]:
    return [event for chunk in chunks for event in parser.feed(chunk)]


def test_a_whole_stream_in_one_chunk_gives_every_event_and_skips_comments() -> None:
    assert SSEParser().feed(STREAM) == EXPECTED


def test_every_split_point_gives_the_same_events_even_inside_a_utf8_character() -> None:
    for cut in range(1, len(STREAM)):
        assert feed_all(SSEParser(), [STREAM[:cut], STREAM[cut:]]) == EXPECTED, cut


def test_byte_by_byte_feeding_gives_the_same_events() -> None:
    assert feed_all(SSEParser(), [bytes([b]) for b in STREAM]) == EXPECTED


def test_an_event_is_dispatched_only_at_its_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b"id: 1-0\nevent: stdout\ndata: {}\n") == []
    assert parser.feed(b"\n") == [ServerSentEvent(event="stdout", data="{}", id="1-0")]


def test_multi_line_data_joins_with_newlines() -> None:
    events = SSEParser().feed(b"event: note\ndata: first\ndata:second\ndata:  third\n\n")
    assert events == [ServerSentEvent(event="note", data="first\nsecond\n third")]


def test_crlf_and_cr_line_endings_also_split_across_chunks() -> None:
    parser = SSEParser()
    events = feed_all(parser, [b"id: 7-1\r", b"\nevent: a\r\ndata: x\r", b"\r", b"event: b\rdata: y\r\r"])
    assert events == [ServerSentEvent(event="a", data="x", id="7-1"), ServerSentEvent(event="b", data="y", id="7-1")]


def test_event_without_data_is_not_dispatched_and_default_name_is_message() -> None:
    assert SSEParser().feed(b"event: lonely\n\ndata: d\n\n") == [ServerSentEvent(event="message", data="d")]


def test_the_last_id_carries_over_and_a_nul_id_is_ignored() -> None:
    events = SSEParser().feed(b"id: 3-0\ndata: a\n\ndata: b\n\nid: 4\x00\ndata: c\n\n")
    assert [event.id for event in events] == ["3-0", "3-0", "3-0"]


def test_retry_field_is_read_and_unknown_fields_are_ignored() -> None:
    events = SSEParser().feed(b"retry: 1500\nfoo: bar\ndata\ndata: x\n\n")
    assert events == [ServerSentEvent(event="message", data="\nx", retry_ms=1500)]
