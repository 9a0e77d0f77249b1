"""The typed dependencies every route takes: the settings and the database of the running app."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from core.config import Settings
from core.db import Database


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
