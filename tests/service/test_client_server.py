"""The Python client over real HTTP, against uvicorn (the rest of its tests run in process): API keys sent as set,
the async client, and a service that is not there."""

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models import array_to_image, load_digit_images
from service.client import NO_RETRY, AsyncClient, Client, ConnectionFailed, Forbidden, NotFound, Retry, Unauthorized
from service.config import Settings
from tests.servers import free_port, serving


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, default_data_dir: Path) -> Iterator[str]:
    """One server for the module with a read-write and a read-only key, on a private copy of the default data."""
    data_dir = tmp_path_factory.mktemp("client-server") / "data"
    shutil.copytree(default_data_dir, data_dir)
    settings = Settings(
        data_dir=data_dir,
        device="cpu",
        faiss_gpu="false",
        num_threads=2,
        api_key="rw-key",
        read_only_api_key="ro-key",
    )
    with serving(settings) as base_url:
        yield base_url


def test_a_service_that_is_not_there_raises_connection_failed() -> None:
    with Client(f"http://127.0.0.1:{free_port()}", retry=Retry(attempts=2, delay_s=0.001), timeout=2) as client:
        with pytest.raises(ConnectionFailed) as failed:
            client.info()
    assert failed.value.status is None and "cannot reach" in str(failed.value)
    with Client(f"http://127.0.0.1:{free_port()}", retry=NO_RETRY) as client:
        assert client.ready() is False


def test_api_keys(url: str) -> None:
    with Client(url) as anonymous, pytest.raises(Unauthorized, match="API key"):
        anonymous.info()
    with Client(url, api_key="ro-key") as reader:
        assert reader.get_item("digits-1").id == "digits-1"
        with pytest.raises(Forbidden, match="only read"):
            reader.delete_item("digits-1")
    with Client(url, api_key="rw-key") as writer:
        assert writer.delete_item("digits-1").deleted == "digits-1"


def test_async_client(url: str, rng: np.random.Generator) -> None:
    logits = rng.standard_normal((70, 10)).astype(np.float32)

    async def scenario() -> None:
        async with AsyncClient(url, api_key="rw-key") as client:
            assert await client.ready()
            answer = await client.upsert([f"async-{i}" for i in range(70)], logits)
            assert answer.upserted == 70
            found = await client.search(logits[:2], k=1)
            assert [row[0].id for row in found.results] == ["async-0", "async-1"]
            image = Image.fromarray(np.asarray(array_to_image(load_digit_images().images[5])))
            assert (await client.search_image(image, k=1)).results[0][0].id == "digits-5"
            assert len((await client.embed([image])).predicted) == 1
            ids = [item.id async for item in client.iter_items(page_size=700) if item.id.startswith("async-")]
            assert len(ids) == 70
            with pytest.raises(NotFound):
                await client.get_item("async-x")

    asyncio.run(scenario())
