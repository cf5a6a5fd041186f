package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// malformedFileName is the file of a migrated folder store that keeps the
// lines of the old records file that were not records, in their order. It is
// not an address, so List lists its lines after the records and says why.
const malformedFileName = "malformed"

// Migrate turns the records file at path into a folder store at the same
// path, holding the exclusive lock throughout, so that no update of either
// layout runs meanwhile. The steps, and what a crash after each leaves:
//
//  1. Build the folder store in path+".migrating": one file per address
//     holding its record (and any later duplicate lines for it), the
//     malformed lines in path+"/malformed", then syncfs(2) and fsync.
//     A crash leaves path the records file, so updates go on as before, and
//     a partial path+".migrating" folder, which the next Migrate removes
//     before it starts again.
//  2. Swap path+".migrating" and path with renameat2(RENAME_EXCHANGE), one
//     atomic step, and fsync the parent: path is now the folder store, and
//     path+".migrating" the old records file. There is no moment when path
//     is missing, so an update never starts a fresh, empty store.
//  3. Rename path+".migrating" to path+".old" and fsync the parent. A crash
//     before this leaves path the folder store, which updates use, and the
//     next Migrate finishes this step.
//
// Outcomes: path already a folder store (done, after finishing step 3 if a
// crash interrupted it); path missing (an empty folder store is created);
// path a records file (migrated; the summary counts records, duplicate and
// malformed lines). It changes nothing and fails if path+".old" exists, or
// something other than its own leftovers is at path+".migrating", or the
// filesystem cannot swap atomically (EINVAL: see the package comment for the
// manual procedure). Other errors name the step and path. The summary is a
// sentence for the operator; problems that do not stop it (malformed lines,
// leftovers removed) go to logf.
func Migrate(path string, logf func(format string, args ...any)) (summary string, err error) {
	logf = logOr(logf)
	lock, err := lockStore(path, unix.LOCK_EX)
	if err != nil {
		return "", err
	}
	defer lock.release()

	building, old := path+".migrating", path+".old"
	pathInfo, err := lstat(path)
	if err != nil {
		return "", fmt.Errorf("migrate %s: %w", path, err)
	}
	buildInfo, err := lstat(building)
	if err != nil {
		return "", fmt.Errorf("migrate %s: %w", path, err)
	}

	switch {
	case pathInfo != nil && pathInfo.IsDir():
		if buildInfo == nil {
			return path + " is already a folder store; nothing to do", nil
		}
		if !buildInfo.Mode().IsRegular() {
			return "", fmt.Errorf("migrate %s: %s is in the way, and not lastaccess's; remove it or move it away", path, building)
		}
		// Killed between steps 2 and 3: building is the old records file.
		if err := moveAside(building, old); err != nil {
			return "", fmt.Errorf("migrate %s: finish an interrupted migration: %w", path, err)
		}
		logf("finished an interrupted migration: moved the old records file %s to %s", building, old)
		return fmt.Sprintf("%s is a folder store; the old records file is %s", path, old), nil
	case pathInfo != nil && !pathInfo.Mode().IsRegular():
		return "", fmt.Errorf("migrate %s: neither a regular file nor a folder (%s)", path, pathInfo.Mode().Type())
	}

	// path is a records file, or missing. A folder at building is a build
	// killed before step 2 (after it, path would be that folder): every
	// record in it is also in path.
	if buildInfo != nil {
		if !buildInfo.IsDir() {
			return "", fmt.Errorf("migrate %s: %s is in the way, and not lastaccess's; remove it or move it away", path, building)
		}
		if err := os.RemoveAll(building); err != nil {
			return "", fmt.Errorf("migrate %s: remove %s, left by an interrupted migration: %w", path, building, err)
		}
		logf("removed %s, left by an interrupted migration", building)
	}
	if pathInfo == nil {
		if err := (&FolderStore{Path: path}).create(); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s did not exist; created an empty folder store there", path), nil
	}
	if info, err := lstat(old); err != nil || info != nil {
		if err == nil {
			err = errors.New("it exists; move it away first")
		}
		return "", fmt.Errorf("migrate %s: %s: %w (nothing changed)", path, old, err)
	}

	records, mode, err := (&FileStore{Path: path, Logf: logf}).file().read()
	if err != nil {
		return "", err
	}
	counts, err := build(building, records, mode)
	if err != nil {
		if rmErr := os.RemoveAll(building); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("remove %s: %w", building, rmErr))
		}
		return "", fmt.Errorf("migrate %s: %w (the records file is unchanged)", path, err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, building, unix.AT_FDCWD, path, unix.RENAME_EXCHANGE); err != nil {
		err = fmt.Errorf("migrate %s: swap in %s: renameat2 RENAME_EXCHANGE: %w", path, building, err)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			err = fmt.Errorf("%w: the filesystem cannot swap a file and a folder atomically; see the manual procedure in lastaccess's documentation", err)
		}
		if rmErr := os.RemoveAll(building); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("remove %s: %w", building, rmErr))
		}
		return "", fmt.Errorf("%w (the records file is unchanged)", err)
	}
	parent := filepath.Dir(path)
	if err := syncDir(parent); err != nil {
		return "", fmt.Errorf("migrate %s: fsync folder %s after swapping in the folder store: %w (run -migrate again)", path, parent, err)
	}
	if err := moveAside(building, old); err != nil {
		return "", fmt.Errorf("migrate %s: %w (%s is the folder store; run -migrate again)", path, err, path)
	}
	summary = fmt.Sprintf("%s is now a folder store of %d records", path, counts.records)
	if counts.duplicates > 0 {
		summary += fmt.Sprintf("; %d duplicate lines kept in their address's file", counts.duplicates)
	}
	if counts.malformed > 0 {
		summary += fmt.Sprintf("; %d malformed lines kept in %s", counts.malformed, filepath.Join(path, malformedFileName))
	}
	return summary + "; the old records file is " + old, nil
}

// migrated counts the lines build put in the folder store.
type migrated struct{ records, duplicates, malformed int }

// build creates the folder store dir holding records: each address's record
// in its file, followed by any duplicate lines for it, and the malformed
// lines in the file malformedFileName. Files get mode, the folder the same
// with x wherever mode has r. The files are written without an fsync each,
// then made durable at once with syncfs(2) on their filesystem.
func build(dir string, records []record, mode fs.FileMode) (migrated, error) {
	var counts migrated
	byAddr := map[netip.Addr]*strings.Builder{}
	var order []netip.Addr
	var malformed strings.Builder
	for _, r := range records {
		ip, ok := r.ip, r.ok
		if !ok {
			ip, _, err := parseRecord(r.text)
			if err != nil {
				malformed.WriteString(r.text + "\n")
				counts.malformed++
				continue
			}
			counts.duplicates++
			byAddr[ip].WriteString(r.text + "\n") // read made the first line for ip its record
			continue
		}
		counts.records++
		order = append(order, ip)
		byAddr[ip] = &strings.Builder{}
		byAddr[ip].WriteString(r.text + "\n")
	}

	dirMode := mode | (mode&0o444)>>2
	if err := os.Mkdir(dir, 0o700); err != nil {
		return counts, fmt.Errorf("create folder %s: %w", dir, bare(err))
	}
	if err := os.Mkdir(filepath.Join(dir, tempFolderName), 0o755); err != nil {
		return counts, fmt.Errorf("create folder %s: %w", filepath.Join(dir, tempFolderName), bare(err))
	}
	for _, ip := range order {
		if err := writeNew(filepath.Join(dir, addrFileName(ip)), byAddr[ip].String(), mode); err != nil {
			return counts, err
		}
	}
	if counts.malformed > 0 {
		if err := writeNew(filepath.Join(dir, malformedFileName), malformed.String(), mode); err != nil {
			return counts, err
		}
	}
	if err := os.Chmod(dir, dirMode); err != nil {
		return counts, fmt.Errorf("chmod %s: %w", dir, bare(err))
	}
	d, err := os.Open(dir)
	if err != nil {
		return counts, fmt.Errorf("sync %s: %w", dir, bare(err))
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return counts, fmt.Errorf("syncfs %s: %w", dir, err)
	}
	if err := d.Sync(); err != nil {
		return counts, fmt.Errorf("fsync %s: %w", dir, bare(err))
	}
	return counts, nil
}

// writeNew creates path, which must not exist, with content and exactly
// mode. It does not fsync: build syncs the whole filesystem once.
func writeNew(path, content string, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, bare(err))
	}
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.WriteString(content)
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, bare(err))
	}
	return nil
}

// moveAside renames from to to, which must not exist, and fsyncs their folder.
func moveAside(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) {
		// No RENAME_NOREPLACE on this filesystem; we hold the lock, so only
		// an operator could create to between the look and the rename.
		if _, err = os.Lstat(to); err == nil {
			err = unix.EEXIST
		} else if errors.Is(err, fs.ErrNotExist) {
			err = os.Rename(from, to)
		}
	}
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("rename %s to %s: %s exists; move it away first", from, to, to)
	}
	if err != nil {
		return fmt.Errorf("rename %s to %s: %w", from, to, bare(err))
	}
	dir := filepath.Dir(to)
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("fsync folder %s after renaming %s to %s: %w", dir, from, to, err)
	}
	return nil
}

// lstat is os.Lstat, with nil info and no error for a missing path.
func lstat(path string) (fs.FileInfo, error) {
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lstat %s: %w", path, bare(err))
	}
	return info, nil
}
