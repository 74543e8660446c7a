"""Static files in production: WhiteNoise's compressed manifest storage (hashed names that
browsers may cache for ever, gzip and brotli copies made once by collectstatic)."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    # The pages are ES modules importing each other by relative path ("./socket.js"): rewrite
    # those imports to the hashed names too, so a page never mixes modules of two releases.
    support_js_module_import_aggregation = True
