"""Files and Batches on the offline server, driven by the real ``openai`` client, checked by its own types."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types import Batch, FileObject
from openai.types.responses import Response

from agentlab.offline import LatencyModel, ServerConfig, start, start_process
from agentlab.offline.batches import MAX_REQUESTS, parse_input

TOOLS = [
    {
        "type": "function",
        "name": "sum_numbers",
        "description": "Add two numbers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
            "additionalProperties": False,
        },
        "strict": True,
    }
]


def config(batch_seconds: float = 1.0, window: float = 24 * 3600.0) -> ServerConfig:
    return ServerConfig(LatencyModel(time_scale=0.05), batch_seconds=batch_seconds, batch_window_seconds=window)


@pytest.fixture(scope="module")
def server_config() -> ServerConfig:
    return config()


@pytest.fixture(scope="module")
def client(server: Any) -> Iterator[OpenAI]:
    with OpenAI(base_url=server.base_url, api_key="offline", max_retries=0) as made:
        yield made


def line(custom_id: str, prompt: str, **extra: Any) -> dict[str, Any]:
    body = {"model": "gpt-5-mini", "input": [{"role": "user", "content": prompt}], "tools": TOOLS, **extra}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/responses", "body": body}


def upload(client: OpenAI, lines: list[Any], name: str = "requests.jsonl") -> FileObject:
    return client.files.create(file=(name, io.BytesIO(upload_text(lines))), purpose="batch")


def upload_text(lines: list[Any]) -> bytes:
    return "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines).encode()


def wait(client: OpenAI, batch_id: str, timeout: float = 20.0) -> Batch:
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = client.batches.retrieve(batch_id)
        seen.append(batch.status)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        time.sleep(0.01)
    raise AssertionError(f"batch {batch_id} never finished: {seen[-5:]}")


def results(client: OpenAI, file_id: str | None) -> dict[str, dict[str, Any]]:
    if file_id is None:
        return {}
    lines = [json.loads(x) for x in client.files.content(file_id).text.splitlines() if x.strip()]
    return {x["custom_id"]: x for x in lines}


def test_a_file_goes_up_and_comes_back(client: OpenAI) -> None:
    uploaded = upload(client, [line("a", "What is 2 + 3?")], name="mine.jsonl")
    assert isinstance(uploaded, FileObject) and uploaded.purpose == "batch" and uploaded.filename == "mine.jsonl"
    assert FileObject.model_validate(uploaded.model_dump()) == client.files.retrieve(uploaded.id)
    assert json.loads(client.files.content(uploaded.id).text)["custom_id"] == "a"
    assert client.files.delete(uploaded.id).deleted
    with pytest.raises(openai.NotFoundError) as caught:
        client.files.retrieve(uploaded.id)
    assert caught.value.body == {
        "message": f"No such File object: {uploaded.id}",
        "type": "invalid_request_error",
        "param": "id",
        "code": None,
    }


def test_a_batch_runs_through_its_statuses_and_answers_every_line(client: OpenAI) -> None:
    lines = [line(f"req-{i}", f"What is {i} + {i}?") for i in range(120)] + [line("hello", "Hello!")]
    created = client.batches.create(
        input_file_id=upload(client, lines).id,
        endpoint="/v1/responses",
        completion_window="24h",
        metadata={"run": "test"},
    )
    assert created.status == "validating" and created.metadata == {"run": "test"}
    statuses = {created.status}
    while (batch := client.batches.retrieve(created.id)).status not in ("completed", "failed"):
        statuses.add(batch.status)
        time.sleep(0.005)
    assert {"validating", "in_progress"} <= statuses and batch.status == "completed", statuses
    assert batch.request_counts and batch.request_counts.model_dump() == {"total": 121, "completed": 121, "failed": 0}
    assert batch.in_progress_at and batch.finalizing_at and batch.completed_at and batch.error_file_id is None
    assert batch.usage and batch.usage.output_tokens > 0 and batch.model == "gpt-5-mini"
    answered = results(client, batch.output_file_id)
    assert client.files.retrieve(batch.output_file_id or "").purpose == "batch_output"
    assert set(answered) == {f"req-{i}" for i in range(120)} | {"hello"}
    first = answered["req-7"]
    assert first["error"] is None and first["response"]["status_code"] == 200
    turn = Response.model_validate(first["response"]["body"])
    assert [item.type for item in turn.output] == ["reasoning", "function_call"]
    assert Response.model_validate(answered["hello"]["response"]["body"]).output_text.startswith("Hello")


def test_a_refused_body_goes_to_the_error_file_and_the_others_are_answered(client: OpenAI) -> None:
    bad = {"custom_id": "bad", "method": "POST", "url": "/v1/responses", "body": {"model": "gpt-5-mini"}}
    faulty = line("faulty", "What is 1 + 1? [fault=500]")
    batch = wait(
        client,
        client.batches.create(
            input_file_id=upload(client, [line("good", "What is 4?"), bad, faulty]).id,
            endpoint="/v1/responses",
            completion_window="24h",
        ).id,
    )
    assert batch.status == "completed" and batch.request_counts
    assert (batch.request_counts.completed, batch.request_counts.failed) == (1, 2)
    errors = results(client, batch.error_file_id)
    assert errors["bad"]["error"] is None and errors["bad"]["response"]["status_code"] == 400
    assert errors["bad"]["response"]["body"]["error"]["param"] == "input"
    assert errors["faulty"]["response"]["status_code"] == 500
    assert list(results(client, batch.output_file_id)) == ["good"]


@pytest.mark.parametrize(
    ("lines", "code", "line_number"),
    [
        ([json.dumps(line("a", "Hi")), "{not json"], "invalid_json_line", 2),
        ([{"method": "POST", "url": "/v1/responses", "body": {}}], "missing_required_parameter", 1),
        ([line("a", "Hi"), line("b", "Hi"), line("a", "Hi")], "duplicate_custom_id", 3),
        ([line("a", "Hi"), {**line("b", "Hi"), "url": "/v1/chat/completions"}], "url_mismatch", 2),
        ([line("a", "Hi"), {**line("b", "Hi"), "body": {"model": "gpt-5", "input": "Hi"}}], "model_mismatch", 2),
        ([], "empty_file", None),
    ],
)
def test_a_file_with_a_bad_line_fails_validation_with_errors(
    client: OpenAI, lines: list[Any], code: str, line_number: int | None
) -> None:
    batch = wait(
        client,
        client.batches.create(
            input_file_id=upload(client, lines).id, endpoint="/v1/responses", completion_window="24h"
        ).id,
    )
    assert batch.status == "failed" and batch.failed_at and batch.errors and batch.errors.data
    assert (batch.errors.data[0].code, batch.errors.data[0].line) == (code, line_number)
    assert batch.output_file_id is None and batch.error_file_id is None


def test_bad_requests_are_4xx_in_openai_shape(client: OpenAI, server: Any) -> None:
    file_id = upload(client, [line("a", "Hi")]).id
    with pytest.raises(openai.NotFoundError, match="No batch found"):
        client.batches.retrieve("batch_nope")
    with pytest.raises(openai.NotFoundError, match="No such File"):
        client.batches.create(input_file_id="file-nope", endpoint="/v1/responses", completion_window="24h")
    for wrong in ({"endpoint": "/v1/embeddings"}, {"completion_window": "1h"}, {"metadata": {"k": 1}}):
        params: dict[str, Any] = {"input_file_id": file_id, "endpoint": "/v1/responses", "completion_window": "24h"}
        with pytest.raises(openai.BadRequestError) as caught:
            client.batches.create(**{**params, **wrong})
        assert caught.value.status_code == 400 and isinstance(caught.value.body, dict)
    with pytest.raises(openai.BadRequestError, match="purpose"):
        client.files.create(file=("x.jsonl", b"{}\n"), purpose="fine-tune")
    raw = httpx.post(server.base_url + "/batches", content=b"[1,", headers={"content-type": "application/json"})
    assert raw.status_code == 400 and raw.json()["error"]["code"] == "invalid_json"


def test_an_upload_over_the_limit_is_a_413() -> None:
    small = ServerConfig(LatencyModel(time_scale=0.05), max_file_bytes=1000)
    with start(small) as running, OpenAI(base_url=running.base_url, api_key="x", max_retries=0) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            client.files.create(file=("big.jsonl", b"x" * 5000), purpose="batch")
        assert caught.value.status_code == 413
        assert client.files.create(file=("ok.jsonl", b"x" * 900), purpose="batch").bytes == 900


def test_list_pages_newest_first_and_cancel_keeps_partial_results() -> None:
    with start(config(batch_seconds=40)) as running, OpenAI(base_url=running.base_url, api_key="x") as client:
        file_id = upload(client, [line(f"r{i}", f"What is {i}?") for i in range(400)]).id
        made = [
            client.batches.create(input_file_id=file_id, endpoint="/v1/responses", completion_window="24h")
            for _ in range(3)
        ]
        while client.batches.retrieve(made[0].id).status == "validating":
            time.sleep(0.01)
        cancelling = client.batches.cancel(made[0].id)
        assert cancelling.status == "cancelling" and cancelling.cancelling_at
        page = client.batches.list(limit=2)
        assert [b.id for b in page.data] == [made[2].id, made[1].id] and page.has_more
        assert [b.id for b in client.batches.list(limit=2, after=made[1].id).data] == [made[0].id]
        assert [b.id for b in client.batches.list(limit=2)][:3] == [b.id for b in reversed(made)]
        cancelled = wait(client, made[0].id)
        assert cancelled.status == "cancelled" and cancelled.cancelled_at and cancelled.request_counts
        skipped = results(client, cancelled.error_file_id)
        assert skipped and all(x["error"]["code"] == "batch_cancelled" for x in skipped.values())
        assert len(skipped) + len(results(client, cancelled.output_file_id)) == 400
        with pytest.raises(openai.BadRequestError, match="Cannot cancel"):
            client.batches.cancel(made[0].id)
        stats = httpx.get(running.url + "/offline/batch-stats").json()
        assert stats["batches"] == 3 and stats["repeated"]["r0"] == 3  # one file, three batches


def test_a_batch_past_its_window_expires_with_what_it_answered() -> None:
    with start(config(batch_seconds=20, window=10)) as running, OpenAI(base_url=running.base_url, api_key="x") as c:
        lines = [line(f"r{i}", f"What is {i}?") for i in range(500)]
        batch = wait(
            c, c.batches.create(input_file_id=upload(c, lines).id, endpoint="/v1/responses", completion_window="24h").id
        )
        assert batch.status == "expired" and batch.expired_at
        done, skipped = results(c, batch.output_file_id), results(c, batch.error_file_id)
        assert done and skipped and len(done) + len(skipped) == 500
        assert {x["error"]["code"] for x in skipped.values()} == {"batch_expired"}
        assert Batch.model_validate(batch.model_dump()) == batch


def test_files_are_held_with_a_cap_the_oldest_dropped_first() -> None:
    capped = ServerConfig(LatencyModel(time_scale=0.05), max_stored_bytes=2500)
    with start(capped) as running, OpenAI(base_url=running.base_url, api_key="x", max_retries=0) as client:
        ids = [client.files.create(file=(f"{i}.jsonl", b"x" * 1000), purpose="batch").id for i in range(4)]
        with pytest.raises(openai.NotFoundError):
            client.files.retrieve(ids[0])
        assert [client.files.retrieve(i).bytes for i in ids[2:]] == [1000, 1000]


def test_malformed_requests_are_400_never_500(client: OpenAI, server: Any) -> None:
    base = server.base_url
    answers = [
        httpx.post(base + "/files", json={"purpose": "batch"}),  # not multipart
        httpx.post(
            base + "/files", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data; boundary=x"}
        ),
        httpx.post(base + "/files", files={"file": ("a.jsonl", b"{}\n")}),  # no purpose
        httpx.post(base + "/files", data={"purpose": "batch"}, files={"other": ("a", b"x")}),  # no file
        httpx.get(base + "/batches", params={"limit": "0"}),
        httpx.get(base + "/batches", params={"limit": "many"}),
        httpx.post(base + "/batches", json={"endpoint": "/v1/responses", "completion_window": "24h"}),
        httpx.post(base + "/batches", json=["not", "an", "object"]),
        httpx.post(base + "/batches/batch_nope/cancel"),
        httpx.get(base + "/files/file-nope/content"),
        httpx.delete(base + "/files/file-nope"),
    ]
    assert [a.status_code for a in answers] == [400, 400, 400, 400, 400, 400, 400, 400, 404, 404, 404]
    assert all(set(a.json()["error"]) == {"message", "type", "param", "code"} for a in answers)
    assert client.batches.list(limit=5, after="batch_unknown").data == []


def test_odd_lines_end_in_a_failed_batch_or_in_the_error_file_never_a_server_error(client: OpenAI) -> None:
    odd_bodies: list[Any] = [
        {"model": 5, "input": "Hi"},
        {"model": "gpt-5-mini", "input": [[[]]]},
        {"model": "gpt-5-mini", "input": "Hi", "stream": True},
        {"model": "gpt-5-mini", "input": "Hi", "tools": [{"type": "web_search"}]},
        {"model": "gpt-5-mini", "input": [{"type": "function_call_output", "call_id": "x", "output": "1"}]},
        {"model": "gpt-5-mini", "input": "x" * 100_000},
    ]
    lines = [
        {"custom_id": f"odd-{i}", "method": "POST", "url": "/v1/responses", "body": b} for i, b in enumerate(odd_bodies)
    ]
    batch = wait(
        client,
        client.batches.create(
            input_file_id=upload(client, lines).id, endpoint="/v1/responses", completion_window="24h"
        ).id,
    )
    assert batch.status == "completed" and batch.request_counts
    errors = results(client, batch.error_file_id)
    statuses = {cid: e["response"]["status_code"] for cid, e in errors.items()}
    assert all(400 <= s < 500 for s in statuses.values()), statuses
    assert batch.request_counts.completed + batch.request_counts.failed == len(odd_bodies)
    for bad_file in (
        b'{"custom_id": "a", "body": {}, "url": "/v1/responses"}\n' + b"[" * 5000,
        b"\xff\xfe\n",
        b"\n\n\n",
    ):
        failed = wait(
            client,
            client.batches.create(
                input_file_id=client.files.create(file=("x.jsonl", bad_file), purpose="batch").id,
                endpoint="/v1/responses",
                completion_window="24h",
            ).id,
        )
        assert failed.status == "failed" and failed.errors and failed.errors.data


def test_serve_batch_seconds_sets_how_long_a_batch_takes() -> None:
    import subprocess
    import sys

    command = [sys.executable, "-m", "agentlab", "serve", "--port", "0", "--time-scale", "0.05", "--batch-seconds"]
    timings = []
    for seconds in ("1", "20"):
        process = subprocess.Popen([*command, seconds], stdout=subprocess.PIPE, text=True)
        try:
            base_url = (process.stdout.readline() if process.stdout else "").strip().rsplit(" ", 1)[-1]
            with OpenAI(base_url=base_url, api_key="x", max_retries=0) as client:
                made = client.batches.create(
                    input_file_id=upload(client, [line("a", "Hi")]).id,
                    endpoint="/v1/responses",
                    completion_window="24h",
                )
                started = time.monotonic()
                assert wait(client, made.id).status == "completed"
                timings.append(time.monotonic() - started)
        finally:
            process.terminate()
            process.wait(timeout=10)
    assert timings[1] > 5 * timings[0] and timings[1] >= 0.9  # 20 s × 0.05 = 1 s, against 0.05 s


def test_a_file_past_the_cap_is_refused_at_the_cap_without_reading_the_rest() -> None:
    """Issue 24 #14: a file is read a line at a time and stops at MAX_REQUESTS; the lines after are never read."""
    good = "".join(json.dumps(line(f"r{i}", "Hi")) + "\n" for i in range(MAX_REQUESTS + 1))
    lines, errors = parse_input((good + "not json\n").encode(), "/v1/responses")
    assert [e["code"] for e in errors] == ["too_many_tasks"] and f"more than {MAX_REQUESTS}" in errors[0]["message"]
    assert len(lines) == MAX_REQUESTS


def test_the_server_answers_others_while_it_validates_a_huge_file() -> None:
    """Issue 24 #14: validating a file at the cap runs beside the loop: a request meanwhile waits a fraction of it."""
    data = "".join(json.dumps(line(f"r{i}", "Hi")) + "\n" for i in range(MAX_REQUESTS + 1)).encode()
    started = time.perf_counter()
    parse_input(data, "/v1/responses")
    parse_seconds = time.perf_counter() - started
    with start(config(batch_seconds=1)) as running, OpenAI(base_url=running.base_url, api_key="x") as client:
        file_id = client.files.create(file=("big.jsonl", io.BytesIO(data)), purpose="batch").id
        made = client.batches.create(input_file_id=file_id, endpoint="/v1/responses", completion_window="24h")
        waits = []
        while client.batches.retrieve(made.id).status == "validating":
            asked = time.perf_counter()
            client.models.list()
            waits.append(time.perf_counter() - asked)
        assert wait(client, made.id).status == "failed"
    print(f"\nparse {parse_seconds:.2f} s; longest answer while validating {max(waits):.3f} s of {len(waits)}")
    assert max(waits) < parse_seconds / 2


def test_a_cancel_answered_cancelling_during_finalizing_ends_cancelled() -> None:
    """Issue 24 #15: the cancel that said "cancelling" is kept, even when it came while the batch finalized."""
    with start(config(batch_seconds=100)) as running, OpenAI(base_url=running.base_url, api_key="x") as client:
        made = client.batches.create(
            input_file_id=upload(client, [line("a", "What is 2 + 3?")]).id,
            endpoint="/v1/responses",
            completion_window="24h",
        )
        while (status := client.batches.retrieve(made.id).status) not in ("finalizing", "completed"):
            time.sleep(0.01)
        assert status == "finalizing", "the poll missed the 0.5 s of finalizing: the machine is too busy"
        assert client.batches.cancel(made.id).status == "cancelling"
        ended = wait(client, made.id)
        assert ended.status == "cancelled" and ended.cancelled_at and ended.completed_at is None
        assert set(results(client, ended.output_file_id)) == {"a"}  # what was answered is kept


def test_files_and_batches_outlive_a_restart_on_the_same_data_folder(tmp_path: Any) -> None:
    """Issue 24 #9: as on the real API, a batch and its files are still there after the server restarts."""
    requests = [line("a", "What is 2 + 3?"), line("b", "What is 6 * 7?")]
    with start(config(), data_dir=tmp_path) as first, OpenAI(base_url=first.base_url, api_key="x") as client:
        source = upload(client, requests)
        done = wait(client, client.batches.create(input_file_id=source.id, endpoint="/v1/responses",
                                                  completion_window="24h").id)  # fmt: skip
        answers = results(client, done.output_file_id)
    with (
        start(config(batch_seconds=600), data_dir=tmp_path) as second,
        OpenAI(base_url=second.base_url, api_key="x") as client,
    ):
        running = client.batches.create(input_file_id=source.id, endpoint="/v1/responses", completion_window="24h")
    with start(config(), data_dir=tmp_path) as third, OpenAI(base_url=third.base_url, api_key="x") as client:
        assert client.batches.retrieve(done.id).model_dump() == done.model_dump()
        assert client.files.retrieve(source.id).model_dump() == source.model_dump()
        assert client.files.content(source.id).content == upload_text(requests)
        assert results(client, done.output_file_id) == answers
        resumed = wait(client, running.id)  # stopped before it finished: it runs to its end on the new server
        assert resumed.status == "completed" and set(results(client, resumed.output_file_id)) == {"a", "b"}
        assert {batch.id for batch in client.batches.list()} == {done.id, running.id}
    with (
        start(config(), data_dir=tmp_path / "other") as fourth,
        OpenAI(base_url=fourth.base_url, api_key="x") as client,
    ):
        with pytest.raises(openai.NotFoundError):
            client.batches.retrieve(done.id)  # another folder, another server's batches


def test_a_data_folder_that_is_a_file_is_refused_at_start(tmp_path: Any) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("not a folder")
    with pytest.raises(ValueError, match=r"data folder \(--data-dir, data_dir=\) .* name a folder you can write to"):
        start(config(), data_dir=taken)


def test_serve_data_dir_keeps_the_files_of_a_server_process_for_the_next(tmp_path: Any) -> None:
    with start_process(time_scale=0.05, data_dir=tmp_path) as first, OpenAI(base_url=first.base_url, api_key="x") as c:
        kept = upload(c, [line("a", "What is 2 + 3?")])
    with (
        start_process(time_scale=0.05, data_dir=tmp_path) as second,
        OpenAI(base_url=second.base_url, api_key="x") as c,
    ):
        assert c.files.content(kept.id).content == upload_text([line("a", "What is 2 + 3?")])
    (tmp_path / "a-file").write_text("")
    refused = subprocess.run(
        [sys.executable, "-m", "agentlab", "serve", "--port", "0", "--data-dir", str(tmp_path / "a-file")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "--data-dir" in refused.stderr
