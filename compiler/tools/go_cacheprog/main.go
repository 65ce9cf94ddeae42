// nimbus-cacheprog: the build cache of one jailed `go build`, as its GOCACHEPROG.
//
// The go command asks it for cache entries ("get") and hands it new ones
// ("put") as JSON lines on stdin/stdout (cmd/go/internal/cacheprog). Entries
// live in two folders in the go command's own on-disk layout (`xx/<action>-a`
// records naming an output, `xx/<output>-d` bodies):
//
//   - NIMBUS_SHARED_GOCACHE, the server's warm cache (the standard library
//     compiled once by the platform's own sample build), which the jail mounts
//     read-only: read, never written;
//   - GOCACHE, the build's own folder: every entry this build makes goes there
//     and nowhere else, and is thrown away with the build.
//
// A get looks in the shared folder, then in the build's own. The answer is a
// path the go command reads the body from; the read-only mount, not this
// program, is what keeps a build from changing a shared body (this program
// runs in the jail, as untrusted as the compiler it serves).
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	hashSize  = 32
	entrySize = len("v1 ") + 2*hashSize + 1 + 2*hashSize + 1 + 20 + 1 + 20 + 1
)

type request struct {
	ID       int64
	Command  string
	ActionID []byte
	OutputID []byte
	BodySize int64
}

type response struct {
	ID            int64
	Err           string     `json:",omitempty"`
	KnownCommands []string   `json:",omitempty"`
	Miss          bool       `json:",omitempty"`
	OutputID      []byte     `json:",omitempty"`
	Size          int64      `json:",omitempty"`
	Time          *time.Time `json:",omitempty"`
	DiskPath      string     `json:",omitempty"`
}

type entry struct {
	output []byte
	size   int64
	time   time.Time
	body   string
}

func main() {
	shared, own := os.Getenv("NIMBUS_SHARED_GOCACHE"), os.Getenv("GOCACHE")
	if shared == "" || own == "" {
		fmt.Fprintln(os.Stderr, "nimbus-cacheprog: NIMBUS_SHARED_GOCACHE and GOCACHE must be set")
		os.Exit(2)
	}
	in := json.NewDecoder(bufio.NewReaderSize(os.Stdin, 1<<16))
	out := bufio.NewWriter(os.Stdout)
	replies := json.NewEncoder(out)
	send := func(r response) {
		if err := replies.Encode(r); err != nil || out.Flush() != nil {
			os.Exit(1) // the go command is gone
		}
	}
	send(response{KnownCommands: []string{"get", "put", "close"}})
	for {
		var req request
		if err := in.Decode(&req); err != nil {
			if !errors.Is(err, io.EOF) {
				fmt.Fprintln(os.Stderr, "nimbus-cacheprog:", err)
				os.Exit(1)
			}
			return
		}
		var body []byte
		if req.Command == "put" && req.BodySize > 0 {
			if err := in.Decode(&body); err != nil { // a base64 JSON string
				fmt.Fprintln(os.Stderr, "nimbus-cacheprog: reading a body:", err)
				os.Exit(1)
			}
		}
		reply := response{ID: req.ID}
		switch req.Command {
		case "get":
			found, err := lookup(shared, req.ActionID)
			if err != nil {
				found, err = lookup(own, req.ActionID)
			}
			if err != nil {
				reply.Miss = true
			} else {
				reply.OutputID, reply.Size, reply.Time, reply.DiskPath =
					found.output, found.size, &found.time, found.body
			}
		case "put":
			path, err := store(own, req.ActionID, req.OutputID, body)
			if err != nil {
				reply.Err = err.Error()
			}
			reply.DiskPath = path
		case "close":
			send(reply)
			return
		default:
			reply.Err = "unknown command " + strconv.Quote(req.Command)
		}
		send(reply)
	}
}

func name(dir string, id []byte, kind string) string {
	hexID := hex.EncodeToString(id)
	return filepath.Join(dir, hexID[:2], hexID+"-"+kind)
}

// lookup reads the record of `action` in `dir` and checks that its body is there.
func lookup(dir string, action []byte) (entry, error) {
	if len(action) != hashSize {
		return entry{}, errors.New("bad action ID")
	}
	record, err := os.ReadFile(name(dir, action, "a"))
	if err != nil {
		return entry{}, err
	}
	// "v1 <hex action> <hex output> <size, 20 wide> <unix nanoseconds, 20 wide>\n"
	fields := strings.Fields(string(record))
	if len(record) != entrySize || len(fields) != 5 || fields[0] != "v1" ||
		fields[1] != hex.EncodeToString(action) {
		return entry{}, errors.New("bad record")
	}
	output, err := hex.DecodeString(fields[2])
	if err != nil || len(output) != hashSize {
		return entry{}, errors.New("bad output ID")
	}
	size, err1 := strconv.ParseInt(fields[3], 10, 64)
	nanos, err2 := strconv.ParseInt(fields[4], 10, 64)
	if err1 != nil || err2 != nil || size < 0 {
		return entry{}, errors.New("bad record")
	}
	body := name(dir, output, "d")
	if info, err := os.Stat(body); err != nil || !info.Mode().IsRegular() || info.Size() != size {
		return entry{}, errors.New("missing body")
	}
	return entry{output, size, time.Unix(0, nanos), body}, nil
}

// store writes a body and its record into `dir`, the build's own folder.
func store(dir string, action, output, body []byte) (string, error) {
	if len(action) != hashSize || len(output) != hashSize {
		return "", errors.New("bad action or output ID")
	}
	path := name(dir, output, "d")
	if info, err := os.Stat(path); err != nil || info.Size() != int64(len(body)) {
		if err := write(path, body); err != nil {
			return "", err
		}
	}
	record := fmt.Sprintf("v1 %x %x %20d %20d\n", action, output, len(body), time.Now().UnixNano())
	return path, write(name(dir, action, "a"), []byte(record))
}

func write(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	temp := path + ".partial"
	if err := os.WriteFile(temp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(temp, path)
}
