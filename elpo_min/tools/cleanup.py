"""Removing a sandbox's directory, whatever the code left in it.

The code decides the tree's shape: 1,500 nested folders, 100,000 files, folders without any
permission, symbolic links to anywhere. ``shutil.rmtree`` in Python 3.11 recurses once per level
(a deep tree ends in ``RecursionError``) and holds a descriptor per level. :func:`remove_tree`
instead walks the tree with one open directory at a time and a list of names, so depth costs
memory, not stack or descriptors:

* every step is relative to an open directory (``dir_fd``), so no path grows past ``PATH_MAX``;
* a symbolic link is removed, never followed (``O_NOFOLLOW``, ``is_dir(follow_symlinks=False)``);
* a folder its owner may not read, search or write is given ``0o700`` first, which the owner
  of a folder may always do;
* going back up is ``..`` of the open directory, which is safe because nothing else changes
  the tree meanwhile: the code's process and its threads are dead, and it could start no other.

It never raises: what it could not remove comes back as one line, for the caller to report.
"""

from __future__ import annotations

import os
import stat

DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree(root: str) -> str | None:
    """Remove the directory ``root`` and everything beneath it.

    Returns:
        None when it is gone; else the first problem met and how many there were, in one line.
    """
    problems = []
    try:
        _remove_beneath(root, problems)
        os.rmdir(root)
    except FileNotFoundError:
        # gone already: without Landlock, the code may remove its own empty directory
        pass
    except OSError as e:
        problems.append(f"{e.filename or root}: {e.strerror}")
    if not problems:
        return None
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return problems[0] + more


def _remove_beneath(root: str, problems: list[str]) -> None:
    """Empty ``root``, depth first, one open directory at a time."""
    fd = _open_directory(root, None)
    # the names from root down to fd's directory, and per level the subfolders still to remove
    names = []
    pending = [_unlink_files(fd, names, problems)]
    try:
        while True:
            if pending[-1]:
                name = pending[-1].pop()
                if _removed_empty(name, fd):
                    continue
                try:
                    child = _open_directory(name, fd)
                except OSError as e:
                    problems.append(f"{'/'.join([*names, name])}: {e.strerror}")
                    continue
                os.close(fd)
                fd = child
                names.append(name)
                pending.append(_unlink_files(fd, names, problems))
            elif names:
                # this folder is empty (or holds what could not be removed): up, and remove it
                pending.pop()
                parent = os.open("..", DIRECTORY_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = parent
                name = names.pop()
                try:
                    os.rmdir(name, dir_fd=fd)
                except OSError as e:
                    problems.append(f"{'/'.join([*names, name])}: {e.strerror}")
            else:
                return
    finally:
        os.close(fd)


def _open_directory(name: str, dir_fd: int | None) -> int:
    """Open a folder (never a link to one) and make it readable, searchable and writable."""
    try:
        fd = os.open(name, DIRECTORY_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        # no read or search permission: the owner may grant them (``name`` is a folder, not a
        # link, since the listing said so and nothing changes the tree)
        os.chmod(name, 0o700, dir_fd=dir_fd)
        fd = os.open(name, DIRECTORY_FLAGS, dir_fd=dir_fd)
    if stat.S_IMODE(os.fstat(fd).st_mode) & 0o700 != 0o700:
        os.fchmod(fd, 0o700)
    return fd


def _removed_empty(name: str, dir_fd: int) -> bool:
    """Most folders are empty leaves: one ``rmdir`` removes them."""
    try:
        os.rmdir(name, dir_fd=dir_fd)
        return True
    except OSError:
        return False


def _unlink_files(fd: int, names: list[str], problems: list[str]) -> list[str]:
    """Unlink everything in the open directory that is not a folder (files, links, FIFOs,
    sockets); return the subfolders' names."""
    with os.scandir(fd) as listing:
        entries = list(listing)
    subfolders = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            subfolders.append(entry.name)
            continue
        try:
            os.unlink(entry.name, dir_fd=fd)
        except OSError as e:
            problems.append(f"{'/'.join([*names, entry.name])}: {e.strerror}")
    return subfolders
