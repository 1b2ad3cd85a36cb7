/**
 * The version of this bundle, compared with the server extension's
 * (the handshake's `extension_version`): a page still running an older
 * bundle says so instead of failing silently. Kept equal to package.json's
 * and the Python package's version (tests/ui/test_panel_feedback.py checks).
 */
export const BUNDLE_VERSION = '0.1.0';
