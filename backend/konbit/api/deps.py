"""FastAPI dependencies: settings, database sessions, the chain connection.

The ones that only read ``app.state`` are ``async``: FastAPI runs a plain function in the
thread pool, and the trip there and back costs more than the function.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session
from web3 import Web3

from konbit.settings import Settings


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_web3(request: Request) -> Web3:
    web3: Web3 = request.app.state.web3
    return web3


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
Web3Dep = Annotated[Web3, Depends(get_web3)]
