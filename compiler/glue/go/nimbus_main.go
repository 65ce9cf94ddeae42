// Nimbus Go handler glue: the WASI command around a handler-form function.
//
// Reads the event JSON from stdin and the context JSON from NIMBUS_CONTEXT
// (set by the sandbox on every call), calls the user's handler (bound in the
// generated nimbus_handler.go as nimbusUserHandler), writes its result as
// JSON to stdout. A returned error or a panic is a function error: reported
// on stderr as the sandbox's error record — a last line of an ASCII record
// separator (0x1e) and a JSON object {type, message, stack} — and exit 1.

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"reflect"
	"runtime"
	"strconv"
	"strings"
)

// nimbusHandlerFunc is every handler signature the glue accepts.
type nimbusHandlerFunc interface {
	func(interface{}, map[string]string) interface{} |
		func(interface{}, map[string]string) (interface{}, error) |
		func(interface{}) interface{} |
		func(interface{}) (interface{}, error)
}

type nimbusHandler func(interface{}, map[string]string) (interface{}, error)

func nimbusAdapt[F nimbusHandlerFunc](f F) nimbusHandler {
	switch h := any(f).(type) {
	case func(interface{}, map[string]string) interface{}:
		return func(e interface{}, c map[string]string) (interface{}, error) { return h(e, c), nil }
	case func(interface{}, map[string]string) (interface{}, error):
		return h
	case func(interface{}) interface{}:
		return func(e interface{}, _ map[string]string) (interface{}, error) { return h(e), nil }
	case func(interface{}) (interface{}, error):
		return func(e interface{}, _ map[string]string) (interface{}, error) { return h(e) }
	}
	panic("nimbus: unreachable handler signature")
}

const nimbusMaxFrames = 32

type nimbusErrorRecord struct {
	Type    string   `json:"type"`
	Message string   `json:"message"`
	Stack   []string `json:"stack"`
}

// The glue's JSON is nimbus_json.go's: a handler that imports encoding/json pays for it, no other.

func nimbusFail(kind, message string, stack []string) {
	if stack == nil {
		stack = []string{}
	}
	record, _ := nimbusMarshal(nimbusErrorRecord{kind, message, stack})
	os.Stderr.Write(append(append([]byte("\n\x1e"), record...), '\n'))
	os.Exit(1)
}

// nimbusErrorType names an error's dynamic type as the user wrote it:
// "errorString" for errors.New, "ValidationError" for *ValidationError.
func nimbusErrorType(err error) string {
	t := reflect.TypeOf(err)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Name() != "" {
		return t.Name()
	}
	return t.String()
}

// nimbusStack is the panicking goroutine's frames in the user's code.
func nimbusStack() []string {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	var stack []string
	for {
		frame, more := frames.Next()
		name := frame.Function
		if !strings.HasPrefix(name, "runtime.") && !strings.HasPrefix(name, "main.nimbus") &&
			name != "main.main" && len(stack) < nimbusMaxFrames {
			stack = append(stack, fmt.Sprintf("at %s (%s:%d)", name, path.Base(frame.File), frame.Line))
		}
		if !more {
			break
		}
	}
	return stack
}

// nimbusContext is NIMBUS_CONTEXT's members as text: strings as they are, null
// as "", whole numbers without a fraction, anything else as its JSON.
func nimbusContext() map[string]string {
	context := map[string]string{}
	d := &nimbusDecoder{data: []byte(os.Getenv("NIMBUS_CONTEXT"))}
	if nimbusValid(d.data) != nil {
		return context
	}
	d.space()
	if d.data[d.pos] != '{' {
		return context
	}
	d.pos++
	d.space()
	for d.pos < len(d.data) && d.data[d.pos] == '"' {
		key, _ := d.string()
		d.space()
		d.pos++ // the ':'
		d.space()
		start := d.pos
		value, _ := d.value(1)
		raw := string(d.data[start:d.pos])
		switch text := value.(type) {
		case string:
			context[key.(string)] = text
		case nil:
			context[key.(string)] = ""
		default:
			if n, err := strconv.ParseFloat(raw, 64); err == nil && n == float64(int64(n)) {
				context[key.(string)] = strconv.FormatInt(int64(n), 10)
			} else {
				context[key.(string)] = raw
			}
		}
		d.space()
		if d.pos < len(d.data) && d.data[d.pos] == ',' {
			d.pos++
			d.space()
		}
	}
	return context
}

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		nimbusFail("EventError", "reading the event: "+err.Error(), nil)
	}
	var event interface{} = map[string]interface{}{}
	if len(bytes.TrimSpace(data)) > 0 {
		if event, err = nimbusUnmarshal(data); err != nil {
			nimbusFail("EventError", "the event is not JSON: "+err.Error(), nil)
		}
	}
	context := nimbusContext()
	// The handler's prints (fmt.Println) are its log, as on Lambda: stdout is the result's.
	result := os.Stdout
	os.Stdout = os.Stderr
	defer func() {
		if value := recover(); value != nil {
			nimbusFail("Panic", fmt.Sprint(value), nimbusStack())
		}
	}()
	value, err := nimbusUserHandler(event, context)
	if err != nil {
		nimbusFail(nimbusErrorType(err), err.Error(), nil)
	}
	out, err := nimbusMarshal(value)
	if err != nil {
		nimbusFail("ResultError", "the handler's result is not JSON-encodable: "+err.Error(), nil)
	}
	result.Write(out)
}
