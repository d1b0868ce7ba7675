"""The board's web app (Flask): the page, its state as JSON, and the people's moves.

| call | answer |
|---|---|
| `GET /` | the page (its CSS and script from `/static/`, nothing from the network) |
| `GET /api/state` | `BoardFeed.state()`: clock, impact, alerts, injects, steps, roster, notes |
| `POST /api/steps/<step>/claim` `{person}` | 200 the desk's record; 409 `{error}`: the desk refused (one line) |
| `POST /api/steps/<step>/done` `{person, note?}` | as above |
| `POST /api/steps/<step>/block` `{person, reason}` | as above |
| `POST /api/notes` `{by, text}` | as above |
| `POST /api/halt` `{by, reason?}` | 202: the emergency stop is requested (the run reverts every fault, exit 3) |

A body that is not what the call takes is 400 `{error: "field: why"}`. The desk is the judge of every
move (unknown step or person, absent, step not open, taken): the board passes its one-line reason on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, jsonify, render_template, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import emergency_stop
from ..errors import InputError
from .feed import BoardFeed

MAX_BODY = 16 * 1024  # bytes: a note is a few lines
DEFAULT_HALT_REASON = "halt pressed on the command board"

Name = Field(min_length=1, max_length=80)
Text = Field(min_length=1, max_length=2000)


class Move(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Claim(Move):
    person: str = Name


class Done(Move):
    person: str = Name
    note: str = Field("", max_length=2000)


class Block(Move):
    person: str = Name
    reason: str = Text


class Note(Move):
    by: str = Name
    text: str = Text


class Halt(Move):
    by: str = Name
    reason: str = Field(DEFAULT_HALT_REASON, min_length=1, max_length=500)


class BadMove(Exception):
    """A body that is not what the call takes: 400, one line."""


def _body(model: type[Move]) -> Move:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadMove("body: a JSON object is required")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadMove(f"{where}: {first['msg']}") from None


def create_app(feed: BoardFeed, desk: Any, run_dir: Path | str) -> Flask:
    """The app for one run: `desk` takes the moves (harness/people/desk.py `Desk`), `run_dir` is where
    the halt button writes its stop request."""
    here = Path(__file__).parent
    app = Flask("hospital_drill_board", template_folder=str(here / "templates"),
                static_folder=str(here / "static"))
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.json.ensure_ascii = False
    app.json.sort_keys = False

    @app.errorhandler(BadMove)
    def bad_move(e: BadMove):
        return jsonify(error=str(e)), 400

    @app.errorhandler(InputError)
    def refused(e: InputError):  # the desk's DeskError: unknown, absent, not open, taken
        return jsonify(error=str(e)), 409

    @app.get("/")
    def page():
        head = feed.state()["drill"]
        return render_template("board.html", drill=head)

    @app.get("/api/state")
    def state():
        resp = jsonify(feed.state())
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.post("/api/steps/<step_id>/claim")
    def claim(step_id: str):
        move = _body(Claim)
        return jsonify(desk.claim(step_id, move.person))

    @app.post("/api/steps/<step_id>/done")
    def done(step_id: str):
        move = _body(Done)
        return jsonify(desk.done(step_id, move.person, note=move.note))

    @app.post("/api/steps/<step_id>/block")
    def block(step_id: str):
        move = _body(Block)
        return jsonify(desk.block(step_id, move.person, move.reason))

    @app.post("/api/notes")
    def note():
        move = _body(Note)
        return jsonify(desk.note(move.by, move.text))

    @app.post("/api/halt")
    def halt():
        move = _body(Halt)
        path = emergency_stop.request(Path(run_dir), move.by, move.reason)
        return jsonify(halt="requested", by=move.by, reason=move.reason, request=path.name), 202

    return app
