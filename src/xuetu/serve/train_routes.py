"""Training routes (a xuetu extension): upload datasets, start a LoRA fine-tune, follow its runs.
Thin: each calls one function of xuetu.train.jobs or xuetu.train.runs in a worker thread.

    PUT  /v1/datasets/{filename}      upload a dataset (the raw bytes are the body); it is read and checked
    GET  /v1/datasets                 list the uploaded datasets
    POST /v1/runs                     start a LoRA fine-tune on an uploaded dataset
    GET  /v1/runs                     list the runs
    GET  /v1/runs/{run}               one run: settings, metrics (for the loss curve), eval report, log tail
    GET  /v1/runs/{run}/curves.png    the loss curves as a picture
    POST /v1/runs/{run}/cancel        stop a running fine-tune (its last checkpoint is kept)
"""

from __future__ import annotations


from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from xuetu.errors import BadInput
from xuetu.serve import pools, uploads
from xuetu.serve.errors import raw_body

router = APIRouter(prefix="/v1")

FIELDS = ("kind", "status", "out", "base", "method", "dataset", "steps", "total_steps", "train_loss", "val_loss",
          "started_at", "finished_at", "error")


class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: str = Field(min_length=1)
    model: str = "smollm2:135m"
    out: str | None = None
    max_steps: int | None = Field(None, ge=1, le=100_000)
    epochs: float | None = Field(None, gt=0, le=1000)
    lr: float | None = Field(None, gt=0, lt=1)


async def _call(fn, *args, **kwargs):
    return await pools.run("heavy", fn, *args, **kwargs)


def _summary(row: dict) -> dict:
    from xuetu.train import jobs

    out = {"object": "run", "run": row["run"], **{k: row.get(k) for k in FIELDS}}
    out["status"] = jobs.status(row)
    if row.get("steps") is None and row.get("status") in jobs.ACTIVE:
        out["steps"] = None
    return out


@router.put("/datasets/{filename}", status_code=201,
            openapi_extra=raw_body("the dataset's bytes; its name's suffix says how it is read (.jsonl, .json, .csv, .tsv, .parquet)"))
async def upload_dataset(filename: str, request: Request):
    from xuetu.train import jobs

    tmp = await _call(jobs.incoming_file, filename)
    if not await uploads.receive(request, tmp):
        tmp.unlink(missing_ok=True)
        raise BadInput("the upload is empty: send the file's bytes as the request body")
    return await _call(jobs.save_dataset, filename, tmp)


@router.get("/datasets")
async def list_datasets():
    from xuetu.train import jobs

    return {"object": "list", "data": await _call(jobs.list_datasets)}


@router.post("/runs", status_code=202)
async def start_run(body: StartRequest, request: Request):
    from xuetu.train import jobs

    args = request.app.state.args
    return await _call(jobs.start_finetune, body.data, body.model, body.out, body.max_steps, body.epochs, body.lr,
                       args.max_train_steps, args.max_train_minutes)


@router.get("/runs")
async def list_runs():
    from xuetu.train.runs import list_runs as rows

    return {"object": "list", "data": [_summary(r) for r in await _call(rows)]}


@router.get("/runs/{name}")
async def get_run(name: str):
    from xuetu.train import jobs
    from xuetu.train.runs import get_run as find

    def detail():
        run = find(name)
        step = run.metrics()
        progress = [m for m in step if "loss" in m or "val_loss" in m]
        report = run.path / "report.md"
        tail = jobs.log_tail(name)
        out = {**_summary({"run": run.path.name, **run.info}), "metrics": progress,
               "report": report.read_text(encoding="utf-8") if report.is_file() else None, "log": tail}
        if out["status"] == "interrupted" and not out.get("error"):
            errors = [line for line in tail.splitlines() if line.lower().startswith(("error", "xuetu: error"))]
            if errors:
                out["status"], out["error"] = "failed", errors[-1]
        return out

    return await _call(detail)


@router.get("/runs/{name}/curves.png")
async def curves(name: str):
    from xuetu.train.runs import get_run as find

    path = await _call(lambda: find(name).plot())
    return Response(path.read_bytes(), media_type="image/png", headers={"Cache-Control": "no-store"})


@router.post("/runs/{name}/cancel")
async def cancel(name: str):
    from xuetu.train import jobs

    return await _call(jobs.cancel, name)
