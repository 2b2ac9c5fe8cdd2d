"""Ultralytics' own weight names (``yolo11n.pt``, ``yolov8s.pt``) as checkpoint paths, resolved as Ultralytics does.

``YOLO("yolo11n.pt")`` finds the file in the working folder or in Ultralytics' ``weights_dir`` setting and otherwise
downloads it from Ultralytics' assets release into the working folder (``attempt_download_asset``; a YOLOv5 name
becomes its ``u`` successor, ``yolov5n.pt`` -> ``yolov5nu.pt``, with Ultralytics' message). :func:`stock_weights`
answers the same for every yolo_attn path that reads a checkpoint (``pretrained=``, ``--pretrained``, ``transfer``),
except that offline (``YOLO_OFFLINE=1``, or no network) it does not try: it says which file is missing and where to
put it.
"""

from __future__ import annotations

from pathlib import Path


def _asset_name(name: str) -> str | None:
    """``name`` as Ultralytics' assets release names it, when it is one of them (a bare file name); else None."""
    from ultralytics.utils import checks, downloads

    if not name or Path(name).name != name:
        return None
    asset = checks.check_yolov5u_filename(name, verbose=False)
    return asset if asset in downloads.GITHUB_ASSETS_NAMES else None


def _asset_url(asset: str) -> str:
    """Where ``attempt_download_asset`` downloads ``asset`` from (its default release, per Ultralytics version)."""
    import inspect

    from ultralytics.utils import downloads

    release = inspect.signature(downloads.attempt_download_asset).parameters.get("release")
    if release is None or not isinstance(release.default, str):
        return f"https://github.com/{downloads.GITHUB_ASSETS_REPO}/releases/latest/download/{asset}"
    return f"https://github.com/{downloads.GITHUB_ASSETS_REPO}/releases/download/{release.default}/{asset}"


def stock_weights(name) -> Path:
    """The checkpoint file ``name`` names: the file itself, or Ultralytics' asset of that name, found or downloaded.

    Raises:
        FileNotFoundError: no such file and not an asset name; or an asset Ultralytics has no copy of and cannot
            download (offline: the message names the file, where to put it and where it comes from).
    """
    path = Path(name)
    asset = None if path.is_file() else _asset_name(str(name))
    if asset is None:
        if not path.is_file():
            raise FileNotFoundError(f"{name}: no such checkpoint file")
        return path
    from ultralytics.utils import SETTINGS, downloads, is_online

    places = [Path(asset), Path(SETTINGS["weights_dir"]) / asset]  # where attempt_download_asset looks first
    found = next((p for p in places if p.is_file()), None)
    if found is not None:
        return found
    where = f"put {asset} into {Path.cwd()} or into Ultralytics' weights folder {places[1].parent}"
    if not is_online():
        raise FileNotFoundError(f"{name}: Ultralytics' weights {asset} are not here and this machine is offline "
                                f"(YOLO_OFFLINE=1 or no network): download {_asset_url(asset)} and {where}")
    try:
        found = Path(downloads.attempt_download_asset(asset))
    except Exception as exc:  # noqa: BLE001 - Ultralytics raises ConnectionError, OSError, requests' errors...
        raise FileNotFoundError(f"{name}: downloading Ultralytics' weights {asset} failed ({exc}); {where}") from exc
    if not found.is_file():
        raise FileNotFoundError(f"{name}: Ultralytics did not download {asset}; {where}")
    return found
