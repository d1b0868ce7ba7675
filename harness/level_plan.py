"""What the plan (应急预案) requires of the response at each level, as a drill's `levels.required`
declares it: the channels patients and staff must be told through, and the runbook steps that must
be done. The defaults are the plan's:

- level 1: hospital-wide broadcast (院内广播), emergency hotline (应急热线), the patient notice in the
  app, offline reception (线下扫码接诊);
- level 2: official-account push (公众号推送) and the patient notice;
- level 3: the scrolling notice in the app.

    levels:
      required:
        1: [{channel: broadcast}, {channel: hotline}, {channel: app_banner}, {step: offline-reception}]
        2: [{channel: official_account}, {channel: app_banner}]
        3: [{channel: app_banner}]

A level that is named replaces that level's defaults; a level left out keeps them; `[]` requires
nothing.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

Channel = Literal["sms", "official_account", "app_banner", "hotline", "broadcast"]
LevelNumber = Literal[1, 2, 3]

CHANNEL_TITLES: dict[str, tuple[str, str]] = {
    "broadcast": ("hospital-wide broadcast", "院内广播"),
    "hotline": ("emergency hotline", "应急热线"),
    "app_banner": ("patient notice in the app", "App 患者公告"),
    "official_account": ("official-account push", "公众号推送"),
    "sms": ("SMS to patients", "短信通知"),
}
STEP_TITLES: dict[str, tuple[str, str]] = {
    "offline-reception": ("offline reception (QR code, paper records)", "线下扫码接诊"),
}


class Requirement(BaseModel):
    """One thing a level requires: a notification channel used, or a runbook step finished ok."""
    model_config = ConfigDict(extra="forbid")

    channel: Channel | None = Field(None, description="a notification.sent channel")
    step: str | None = Field(None, description="a runbook step id that must finish ok")
    title: str = Field("", description="how the report names it (default: from the channel or step)")

    @model_validator(mode="after")
    def _one(self) -> "Requirement":
        if (self.channel is None) == (self.step is None):
            raise ValueError("a requirement names exactly one of 'channel' or 'step'")
        return self

    @property
    def key(self) -> str:
        return f"channel:{self.channel}" if self.channel else f"step:{self.step}"

    def titles(self) -> tuple[str, str]:
        """(English, Chinese) name of what is required."""
        known = CHANNEL_TITLES.get(self.channel or "") or STEP_TITLES.get(self.step or "")
        if self.title:
            return self.title, self.title
        if known:
            return known
        return (f"step {self.step}", f"步骤 {self.step}") if self.step else (str(self.channel),) * 2


def _channel(name: str) -> Requirement:
    return Requirement(channel=name)


def plan_defaults() -> dict[int, list[Requirement]]:
    return {
        1: [_channel("broadcast"), _channel("hotline"), _channel("app_banner"),
            Requirement(step="offline-reception")],
        2: [_channel("official_account"), _channel("app_banner")],
        3: [_channel("app_banner")],
    }


class RequiredByLevel(RootModel[dict[LevelNumber, list[Requirement]]]):
    """levels.required: level → what it requires; a level not named keeps the plan's defaults."""
    root: dict[LevelNumber, list[Requirement]] = Field(default_factory=plan_defaults)

    @model_validator(mode="before")
    @classmethod
    def _over_defaults(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        merged: dict = dict(plan_defaults())
        merged.update({_level_key(k): v for k, v in data.items()})
        return merged

    def for_level(self, level: int | None) -> list[Requirement]:
        return list(self.root.get(level, [])) if level in (1, 2, 3) else []  # type: ignore[arg-type]


def _level_key(k: object) -> object:
    """YAML writes `1:` as an int, JSON as "1": both mean level 1."""
    return int(k) if isinstance(k, str) and k.strip().isdigit() else k
