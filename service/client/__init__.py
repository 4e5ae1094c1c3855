"""The Python client of logit-search: `Client` (blocking) and `AsyncClient`, on httpx.

from service.client import Client
with Client("http://127.0.0.1:8000") as client:
    hits = client.search_image("seven.png", k=5).results[0]
"""

from .aio import AsyncClient as AsyncClient
from .base import NO_RETRY as NO_RETRY
from .base import Retry as Retry
from .calls import ROUTES as ROUTES
from .calls import Thumbnail as Thumbnail
from .encoding import ImageLike as ImageLike
from .encoding import LogitsLike as LogitsLike
from .errors import Conflict as Conflict
from .errors import ConnectionFailed as ConnectionFailed
from .errors import Forbidden as Forbidden
from .errors import InvalidRequest as InvalidRequest
from .errors import LogitSearchError as LogitSearchError
from .errors import NotFound as NotFound
from .errors import PayloadTooLarge as PayloadTooLarge
from .errors import ServerError as ServerError
from .errors import StorageFull as StorageFull
from .errors import TooManyRequests as TooManyRequests
from .errors import Unauthorized as Unauthorized
from .errors import Unavailable as Unavailable
from .errors import UnexpectedResponse as UnexpectedResponse
from .sync import Client as Client
