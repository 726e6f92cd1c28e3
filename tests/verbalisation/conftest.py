from tests.masking.conftest import (  # noqa: F401 - fixtures
    COVER,
    MaskingHarness,
    marker_cameras,
    masking_harness,
)
