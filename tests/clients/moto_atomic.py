"""moto's S3 server with its conditional writes made atomic, as S3's are.

moto checks `If-None-Match: *` (and `If-Match`) and then writes the object without a lock,
while its server answers requests on threads: two concurrent put-if-absent requests for one
key could both succeed, and the second would replace the first (a Delta commit file, a
Lance claim). Here the handlers that write keys run one at a time."""

import sys
import threading

from moto.s3.responses import S3Response
from moto.server import main

_writes = threading.Lock()


def _one_at_a_time(handler):
    def serialized(self, *args, **kwargs):
        with _writes:
            return handler(self, *args, **kwargs)
    return serialized


# PUT of an object, and the POST that completes a multipart upload.
S3Response.put_object = _one_at_a_time(S3Response.put_object)
S3Response._key_response_post = _one_at_a_time(S3Response._key_response_post)

if __name__ == "__main__":
    main(sys.argv[1:])
