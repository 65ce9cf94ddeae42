// Nimbus Go glue's JSON: the event's decoder and the result's encoder, without
// encoding/json (2 MB of a 4.5 MB hello module, ~45 % of its precompile CPU).
//
// Both match encoding/json byte for byte for what a handler sees and returns
// (tests/compiler/test_go_json.py compares them on a corpus with a host build):
// the event decodes as json.Unmarshal into an interface{} does; the result
// encodes as json.Marshal does (struct tags with omitempty, omitzero, "-" and
// string, embedded structs, sorted map keys, MarshalJSON / MarshalText / IsZero
// through same-method-set interfaces, []byte as base64, float formatting, HTML
// escaping). This file depends on nothing else in the glue.

package main

import (
	"encoding/base64"
	"errors"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// -- decoding ------------------------------------------------------------------

const nimbusMaxDepth = 10000 // encoding/json's nesting limit

type nimbusDecoder struct {
	data      []byte
	pos       int
	numberErr error // a number out of float64's range: reported after the whole parse, as json does
}

// nimbusUnmarshal decodes data as json.Unmarshal into an interface{}: objects are
// map[string]interface{}, arrays []interface{}, numbers float64.
func nimbusUnmarshal(data []byte) (interface{}, error) {
	d := &nimbusDecoder{data: data}
	value, err := d.document()
	if err != nil {
		return nil, err
	}
	if d.numberErr != nil {
		return nil, d.numberErr
	}
	return value, nil
}

// nimbusValid reports whether data is one JSON value (numbers of any size), as json.Valid.
func nimbusValid(data []byte) error {
	_, err := (&nimbusDecoder{data: data}).document()
	return err
}

func (d *nimbusDecoder) document() (interface{}, error) {
	d.space()
	value, err := d.value(0)
	if err != nil {
		return nil, err
	}
	d.space()
	if d.pos < len(d.data) {
		return nil, d.fail("after top-level value")
	}
	return value, nil
}

func (d *nimbusDecoder) fail(where string) error {
	if d.pos >= len(d.data) {
		return errors.New("unexpected end of JSON input")
	}
	return errors.New("invalid character " + strconv.QuoteRune(rune(d.data[d.pos])) + " " + where +
		" (offset " + strconv.Itoa(d.pos) + ")")
}

func (d *nimbusDecoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *nimbusDecoder) value(depth int) (interface{}, error) {
	if d.pos >= len(d.data) {
		return nil, d.fail("")
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		return d.object(depth + 1)
	case c == '[':
		return d.array(depth + 1)
	case c == '"':
		return d.string()
	case c == '-' || ('0' <= c && c <= '9'):
		return d.number()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	}
	return nil, d.fail("looking for beginning of value")
}

func (d *nimbusDecoder) literal(word string) error {
	for i := 0; i < len(word); i++ {
		if d.pos >= len(d.data) || d.data[d.pos] != word[i] {
			return d.fail("in literal " + word)
		}
		d.pos++
	}
	return nil
}

func (d *nimbusDecoder) object(depth int) (interface{}, error) {
	object := map[string]interface{}{}
	more, err := d.open(depth, '}')
	if err != nil {
		return nil, err
	}
	for more {
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, d.fail("looking for beginning of object key string")
		}
		key, err := d.string()
		if err != nil {
			return nil, err
		}
		d.space()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return nil, d.fail("after object key")
		}
		d.pos++
		d.space()
		value, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		object[key.(string)] = value
		if more, err = d.next('}', "after object key:value pair"); err != nil {
			return nil, err
		}
	}
	return object, nil
}

func (d *nimbusDecoder) array(depth int) (interface{}, error) {
	array := []interface{}{}
	more, err := d.open(depth, ']')
	if err != nil {
		return nil, err
	}
	for more {
		value, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		array = append(array, value)
		if more, err = d.next(']', "after array element"); err != nil {
			return nil, err
		}
	}
	return array, nil
}

// open steps into an object or array (at its opening bracket): whether an element
// follows, false when `end` closes it at once.
func (d *nimbusDecoder) open(depth int, end byte) (bool, error) {
	if depth > nimbusMaxDepth {
		return false, errors.New("exceeded max depth")
	}
	d.pos++
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == end {
		d.pos++
		return false, nil
	}
	return true, nil
}

// next steps past what follows an element: a comma (true: another element follows)
// or `end` (false: the object or array is complete).
func (d *nimbusDecoder) next(end byte, where string) (bool, error) {
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == ',' {
		d.pos++
		d.space()
		return true, nil
	}
	if d.pos < len(d.data) && d.data[d.pos] == end {
		d.pos++
		return false, nil
	}
	return false, d.fail(where)
}

func (d *nimbusDecoder) digits() int {
	start := d.pos
	for d.pos < len(d.data) && '0' <= d.data[d.pos] && d.data[d.pos] <= '9' {
		d.pos++
	}
	return d.pos - start
}

func (d *nimbusDecoder) number() (interface{}, error) {
	start := d.pos
	if d.data[d.pos] == '-' {
		d.pos++
	}
	if d.pos < len(d.data) && d.data[d.pos] == '0' {
		d.pos++
	} else if d.digits() == 0 {
		return nil, d.fail("in numeric literal")
	}
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		d.pos++
		if d.digits() == 0 {
			return nil, d.fail("after decimal point in numeric literal")
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if d.digits() == 0 {
			return nil, d.fail("in exponent of numeric literal")
		}
	}
	text := string(d.data[start:d.pos])
	n, err := strconv.ParseFloat(text, 64)
	if err != nil && d.numberErr == nil {
		d.numberErr = errors.New("cannot unmarshal number " + text + " into a float64")
	}
	return n, nil
}

func nimbusHex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// string decodes a quoted string: invalid UTF-8 and lone surrogates become U+FFFD.
func (d *nimbusDecoder) string() (interface{}, error) {
	d.pos++
	var out []byte
	start := d.pos
	for {
		if d.pos >= len(d.data) {
			return nil, d.fail("")
		}
		c := d.data[d.pos]
		switch {
		case c == '"':
			if out == nil {
				text := string(d.data[start:d.pos])
				d.pos++
				if utf8.ValidString(text) {
					return text, nil
				}
				return nimbusValidUTF8([]byte(text)), nil
			}
			out = append(out, d.data[start:d.pos]...)
			d.pos++
			return nimbusValidUTF8(out), nil
		case c < 0x20:
			return nil, d.fail("in string literal")
		case c == '\\':
			out = append(out, d.data[start:d.pos]...)
			d.pos++
			if d.pos >= len(d.data) {
				return nil, d.fail("")
			}
			switch e := d.data[d.pos]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r := nimbusHex4(d.data[d.pos+1:])
				if r < 0 {
					return nil, d.fail("in \\u hexadecimal character escape")
				}
				d.pos += 4
				if utf16.IsSurrogate(r) {
					rest := d.data[d.pos+1:]
					if len(rest) >= 6 && rest[0] == '\\' && rest[1] == 'u' {
						if pair := utf16.DecodeRune(r, nimbusHex4(rest[2:])); pair != unicode.ReplacementChar {
							d.pos += 6
							r = pair
						} else {
							r = unicode.ReplacementChar
						}
					} else {
						r = unicode.ReplacementChar
					}
				}
				out = utf8.AppendRune(out, r)
			default:
				return nil, d.fail("in string escape code")
			}
			d.pos++
			start = d.pos
		default:
			d.pos++
		}
	}
}

// nimbusValidUTF8 is text with each invalid byte replaced by U+FFFD, as json does.
func nimbusValidUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		out = utf8.AppendRune(out, r) // RuneError for an invalid byte
		i += size
	}
	return string(out)
}

// -- encoding ------------------------------------------------------------------

// Declared here with the same method sets as encoding/json's and encoding's,
// so a type satisfies them exactly when it satisfies those.
type nimbusJSONMarshaler interface {
	MarshalJSON() ([]byte, error)
}

type nimbusTextMarshaler interface {
	MarshalText() ([]byte, error)
}

type nimbusIsZeroer interface {
	IsZero() bool
}

var (
	nimbusJSONMarshalerType = reflect.TypeFor[nimbusJSONMarshaler]()
	nimbusTextMarshalerType = reflect.TypeFor[nimbusTextMarshaler]()
	nimbusIsZeroerType      = reflect.TypeFor[nimbusIsZeroer]()
)

// Cycle detection starts this deep, as in encoding/json.
const nimbusCycleDepth = 1000

type nimbusEncodeError struct{ err error }

type nimbusEncoder struct {
	out      []byte
	ptrLevel int
	ptrSeen  map[interface{}]struct{}
}

type nimbusEncodeFunc func(e *nimbusEncoder, v reflect.Value, quoted bool)

var nimbusEncoders = map[reflect.Type]nimbusEncodeFunc{}

// nimbusMarshal encodes value as json.Marshal does.
func nimbusMarshal(value interface{}) (out []byte, err error) {
	e := &nimbusEncoder{ptrSeen: map[interface{}]struct{}{}}
	defer func() {
		if r := recover(); r != nil {
			failure, ok := r.(nimbusEncodeError)
			if !ok {
				panic(r)
			}
			out, err = nil, failure.err
		}
	}()
	v := reflect.ValueOf(value)
	if !v.IsValid() {
		return []byte("null"), nil
	}
	nimbusEncoderFor(v.Type())(e, v, false)
	return e.out, nil
}

func (e *nimbusEncoder) fail(message string) {
	panic(nimbusEncodeError{errors.New("json: " + message)})
}

func nimbusEncoderFor(t reflect.Type) nimbusEncodeFunc {
	if f, ok := nimbusEncoders[t]; ok {
		return f
	}
	// A recursive type finds this indirection while its encoder is being built.
	var built nimbusEncodeFunc
	nimbusEncoders[t] = func(e *nimbusEncoder, v reflect.Value, quoted bool) { built(e, v, quoted) }
	built = nimbusNewEncoder(t, true)
	nimbusEncoders[t] = built
	return built
}

func nimbusNewEncoder(t reflect.Type, allowAddr bool) nimbusEncodeFunc {
	if t.Kind() != reflect.Pointer && allowAddr && reflect.PointerTo(t).Implements(nimbusJSONMarshalerType) {
		return nimbusCondAddr(nimbusViaAddrMethod((*nimbusEncoder).marshalJSON), nimbusNewEncoder(t, false))
	}
	if t.Implements(nimbusJSONMarshalerType) {
		return nimbusViaMethod((*nimbusEncoder).marshalJSON)
	}
	if t.Kind() != reflect.Pointer && allowAddr && reflect.PointerTo(t).Implements(nimbusTextMarshalerType) {
		return nimbusCondAddr(nimbusViaAddrMethod((*nimbusEncoder).marshalText), nimbusNewEncoder(t, false))
	}
	if t.Implements(nimbusTextMarshalerType) {
		return nimbusViaMethod((*nimbusEncoder).marshalText)
	}
	switch t.Kind() {
	case reflect.Bool:
		return func(e *nimbusEncoder, v reflect.Value, quoted bool) {
			e.quote(quoted)
			e.out = strconv.AppendBool(e.out, v.Bool())
			e.quote(quoted)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return func(e *nimbusEncoder, v reflect.Value, quoted bool) {
			e.quote(quoted)
			e.out = strconv.AppendInt(e.out, v.Int(), 10)
			e.quote(quoted)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return func(e *nimbusEncoder, v reflect.Value, quoted bool) {
			e.quote(quoted)
			e.out = strconv.AppendUint(e.out, v.Uint(), 10)
			e.quote(quoted)
		}
	case reflect.Float32:
		return func(e *nimbusEncoder, v reflect.Value, quoted bool) { e.float(v.Float(), 32, quoted) }
	case reflect.Float64:
		return func(e *nimbusEncoder, v reflect.Value, quoted bool) { e.float(v.Float(), 64, quoted) }
	case reflect.String:
		if t.PkgPath() == "encoding/json" && t.Name() == "Number" {
			return nimbusEncodeNumber
		}
		return nimbusEncodeString
	case reflect.Interface:
		return func(e *nimbusEncoder, v reflect.Value, quoted bool) {
			if v.IsNil() {
				e.out = append(e.out, "null"...)
				return
			}
			elem := v.Elem()
			nimbusEncoderFor(elem.Type())(e, elem, quoted)
		}
	case reflect.Struct:
		return nimbusStructEncoder(t)
	case reflect.Map:
		return nimbusMapEncoder(t)
	case reflect.Slice:
		return nimbusSliceEncoder(t)
	case reflect.Array:
		return nimbusArrayEncoder(t)
	case reflect.Pointer:
		return nimbusPointerEncoder(t)
	}
	return func(e *nimbusEncoder, v reflect.Value, _ bool) { e.fail("unsupported type: " + v.Type().String()) }
}

func (e *nimbusEncoder) quote(quoted bool) {
	if quoted {
		e.out = append(e.out, '"')
	}
}

func nimbusCondAddr(addressable, otherwise nimbusEncodeFunc) nimbusEncodeFunc {
	return func(e *nimbusEncoder, v reflect.Value, quoted bool) {
		if v.CanAddr() {
			addressable(e, v, quoted)
		} else {
			otherwise(e, v, quoted)
		}
	}
}

func (e *nimbusEncoder) marshalJSON(m nimbusJSONMarshaler, t reflect.Type) {
	b, err := m.MarshalJSON()
	if err == nil {
		err = nimbusValid(b)
	}
	if err != nil {
		e.fail("error calling MarshalJSON for type " + t.String() + ": " + err.Error())
	}
	e.out = nimbusAppendCompact(e.out, b)
}

// nimbusViaMethod encodes through the value's own method (M is one of the
// marshaler interfaces); a nil pointer or nil interface is null.
func nimbusViaMethod[M any](write func(e *nimbusEncoder, m M, t reflect.Type)) nimbusEncodeFunc {
	return func(e *nimbusEncoder, v reflect.Value, _ bool) {
		m, ok := reflect.TypeAssert[M](v)
		if !ok || v.Kind() == reflect.Pointer && v.IsNil() {
			e.out = append(e.out, "null"...)
			return
		}
		write(e, m, v.Type())
	}
}

// nimbusViaAddrMethod encodes an addressable value through its pointer's method.
func nimbusViaAddrMethod[M any](write func(e *nimbusEncoder, m M, t reflect.Type)) nimbusEncodeFunc {
	return func(e *nimbusEncoder, v reflect.Value, _ bool) {
		m, _ := reflect.TypeAssert[M](v.Addr())
		write(e, m, v.Type())
	}
}

func (e *nimbusEncoder) marshalText(m nimbusTextMarshaler, t reflect.Type) {
	b, err := m.MarshalText()
	if err != nil {
		e.fail("error calling MarshalText for type " + t.String() + ": " + err.Error())
	}
	e.out = nimbusAppendString(e.out, b, true)
}

// nimbusAppendCompact appends valid JSON without its insignificant space,
// with <, >, &, U+2028 and U+2029 escaped (json's compact with HTML escaping).
func nimbusAppendCompact(dst, src []byte) []byte {
	inString := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '<' || c == '>' || c == '&':
			dst = append(dst, '\\', 'u', '0', '0', nimbusHexDigits[c>>4], nimbusHexDigits[c&0xF])
		case c == 0xE2 && i+2 < len(src) && src[i+1] == 0x80 && src[i+2]&^1 == 0xA8:
			dst = append(dst, '\\', 'u', '2', '0', '2', nimbusHexDigits[src[i+2]&0xF])
			i += 2
		case inString:
			dst = append(dst, c)
			if c == '\\' {
				i++
				dst = append(dst, src[i])
			} else if c == '"' {
				inString = false
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		default:
			dst = append(dst, c)
			inString = c == '"'
		}
	}
	return dst
}

func (e *nimbusEncoder) float(f float64, bits int, quoted bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		e.fail("unsupported value: " + strconv.FormatFloat(f, 'g', -1, bits))
	}
	e.quote(quoted)
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	e.out = strconv.AppendFloat(e.out, f, format, -1, bits)
	if format == 'e' {
		// e-09 is written e-9, as JavaScript does.
		n := len(e.out)
		if n >= 4 && e.out[n-4] == 'e' && e.out[n-3] == '-' && e.out[n-2] == '0' {
			e.out[n-2] = e.out[n-1]
			e.out = e.out[:n-1]
		}
	}
	e.quote(quoted)
}

func nimbusEncodeString(e *nimbusEncoder, v reflect.Value, quoted bool) {
	if quoted {
		e.out = nimbusAppendString(e.out, nimbusAppendString(nil, v.String(), true), false)
		return
	}
	e.out = nimbusAppendString(e.out, v.String(), true)
}

// nimbusEncodeNumber writes a json.Number (from a user who imports encoding/json) as its literal.
func nimbusEncodeNumber(e *nimbusEncoder, v reflect.Value, quoted bool) {
	text := v.String()
	if text == "" {
		text = "0"
	}
	d := &nimbusDecoder{data: []byte(text)}
	if text[0] != '-' && (text[0] < '0' || text[0] > '9') || d.skipNumber() != nil || d.pos != len(text) {
		e.fail("invalid number literal " + strconv.Quote(text))
	}
	e.quote(quoted)
	e.out = append(e.out, text...)
	e.quote(quoted)
}

func (d *nimbusDecoder) skipNumber() error {
	_, err := d.number()
	return err
}

const nimbusHexDigits = "0123456789abcdef"

// nimbusAppendString appends src as a JSON string, as json's appendString.
func nimbusAppendString[Bytes []byte | string](dst []byte, src Bytes, escapeHTML bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(src); {
		if b := src[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && (!escapeHTML || (b != '<' && b != '>' && b != '&')) {
				i++
				continue
			}
			dst = append(dst, src[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', nimbusHexDigits[b>>4], nimbusHexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		n := min(len(src)-i, utf8.UTFMax)
		c, size := utf8.DecodeRuneInString(string(src[i : i+n]))
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, src[start:i]...)
			dst = append(dst, "\ufffd"...) // the character itself, as Go 1.25+'s json (v2 inside)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, src[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', nimbusHexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, src[start:]...)
	return append(dst, '"')
}

// enter counts one more reference level and, past nimbusCycleDepth, fails on a
// reference already being encoded.
func (e *nimbusEncoder) enter(key interface{}, v reflect.Value) bool {
	e.ptrLevel++
	if e.ptrLevel <= nimbusCycleDepth {
		return false
	}
	if _, seen := e.ptrSeen[key]; seen {
		e.fail("unsupported value: encountered a cycle via " + v.Type().String())
	}
	e.ptrSeen[key] = struct{}{}
	return true
}

func (e *nimbusEncoder) leave(key interface{}, tracked bool) {
	if tracked {
		delete(e.ptrSeen, key)
	}
	e.ptrLevel--
}

// nimbusReference wraps the encoder of a pointer, slice or map: nil is null, and the
// reference is tracked (enter/leave) while `encode` writes what it refers to.
func nimbusReference(encode nimbusEncodeFunc) nimbusEncodeFunc {
	return func(e *nimbusEncoder, v reflect.Value, quoted bool) {
		if v.IsNil() {
			e.out = append(e.out, "null"...)
			return
		}
		key := nimbusReferenceKey(v)
		tracked := e.enter(key, v)
		encode(e, v, quoted)
		e.leave(key, tracked)
	}
}

// nimbusReferenceKey is what json compares to find a cycle: a pointer with its type (a
// struct and its first field share an address), a slice's data and length, a map's data.
func nimbusReferenceKey(v reflect.Value) interface{} {
	switch v.Kind() {
	case reflect.Pointer:
		return v.Interface()
	case reflect.Slice:
		return nimbusSliceKey{v.UnsafePointer(), v.Len()}
	}
	return v.UnsafePointer()
}

func nimbusPointerEncoder(t reflect.Type) nimbusEncodeFunc {
	elem := nimbusEncoderFor(t.Elem())
	return nimbusReference(func(e *nimbusEncoder, v reflect.Value, quoted bool) {
		elem(e, v.Elem(), quoted)
	})
}

func nimbusArrayEncoder(t reflect.Type) nimbusEncodeFunc {
	elem := nimbusEncoderFor(t.Elem())
	return func(e *nimbusEncoder, v reflect.Value, quoted bool) {
		e.out = append(e.out, '[')
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				e.out = append(e.out, ',')
			}
			elem(e, v.Index(i), quoted)
		}
		e.out = append(e.out, ']')
	}
}

type nimbusSliceKey struct {
	ptr    interface{}
	length int
}

func nimbusSliceEncoder(t reflect.Type) nimbusEncodeFunc {
	if t.Elem().Kind() == reflect.Uint8 {
		p := reflect.PointerTo(t.Elem())
		if !p.Implements(nimbusJSONMarshalerType) && !p.Implements(nimbusTextMarshalerType) {
			return func(e *nimbusEncoder, v reflect.Value, _ bool) {
				if v.IsNil() {
					e.out = append(e.out, "null"...)
					return
				}
				e.out = append(e.out, '"')
				e.out = base64.StdEncoding.AppendEncode(e.out, v.Bytes())
				e.out = append(e.out, '"')
			}
		}
	}
	return nimbusReference(nimbusArrayEncoder(t))
}

type nimbusMapEntry struct {
	key   string
	value reflect.Value
}

func nimbusMapEncoder(t reflect.Type) nimbusEncodeFunc {
	switch t.Key().Kind() {
	case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
	default:
		if !t.Key().Implements(nimbusTextMarshalerType) {
			return func(e *nimbusEncoder, v reflect.Value, _ bool) { e.fail("unsupported type: " + v.Type().String()) }
		}
	}
	elem := nimbusEncoderFor(t.Elem())
	return nimbusReference(func(e *nimbusEncoder, v reflect.Value, quoted bool) {
		entries := make([]nimbusMapEntry, 0, v.Len())
		for it := v.MapRange(); it.Next(); {
			entries = append(entries, nimbusMapEntry{e.mapKey(it.Key(), v.Type()), it.Value()})
		}
		slices.SortFunc(entries, func(a, b nimbusMapEntry) int { return strings.Compare(a.key, b.key) })
		e.out = append(e.out, '{')
		for i, entry := range entries {
			if i > 0 {
				e.out = append(e.out, ',')
			}
			e.out = nimbusAppendString(e.out, entry.key, true)
			e.out = append(e.out, ':')
			elem(e, entry.value, quoted)
		}
		e.out = append(e.out, '}')
	})
}

func (e *nimbusEncoder) mapKey(k reflect.Value, mapType reflect.Type) string {
	if k.Kind() == reflect.String {
		return k.String()
	}
	if m, ok := reflect.TypeAssert[nimbusTextMarshaler](k); ok {
		if k.Kind() == reflect.Pointer && k.IsNil() {
			return ""
		}
		text, err := m.MarshalText()
		if err != nil {
			e.fail("encoding error for type " + strconv.Quote(mapType.String()) + ": " + strconv.Quote(err.Error()))
		}
		return string(text)
	}
	switch k.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(k.Int(), 10)
	case reflect.Float32, reflect.Float64:
		key := &nimbusEncoder{}
		key.float(k.Float(), k.Type().Bits(), false)
		return string(key.out)
	}
	return strconv.FormatUint(k.Uint(), 10)
}

// -- structs -------------------------------------------------------------------

type nimbusField struct {
	name      string
	tagged    bool
	index     []int
	omitEmpty bool
	omitZero  bool
	isZero    func(reflect.Value) bool
	quoted    bool
	encode    nimbusEncodeFunc
}

func nimbusStructEncoder(t reflect.Type) nimbusEncodeFunc {
	fields := nimbusTypeFields(t)
	return func(e *nimbusEncoder, v reflect.Value, _ bool) {
		next := byte('{')
	fields:
		for i := range fields {
			f := &fields[i]
			fv := v
			for _, i := range f.index {
				if fv.Kind() == reflect.Pointer {
					if fv.IsNil() {
						continue fields
					}
					fv = fv.Elem()
				}
				fv = fv.Field(i)
			}
			if f.omitEmpty && nimbusIsEmpty(fv) ||
				f.omitZero && (f.isZero == nil && fv.IsZero() || f.isZero != nil && f.isZero(fv)) {
				continue
			}
			e.out = append(e.out, next)
			next = ','
			e.out = nimbusAppendString(e.out, f.name, true)
			e.out = append(e.out, ':')
			f.encode(e, fv, f.quoted)
		}
		if next == '{' {
			e.out = append(e.out, '{', '}')
		} else {
			e.out = append(e.out, '}')
		}
	}
}

func nimbusIsEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

// nimbusTagName splits a json tag into its member name ("" for the Go field's
// name) and options, as Go 1.25+'s json (v2 inside, v1 semantics) reads it:
// any name before a comma, without backslashes or quotes; a malformed one
// keeps only a leading identifier.
func nimbusTagName(tag string) (string, string) {
	if tag == "" || tag[0] == ',' {
		return "", tag
	}
	n := strings.IndexAny(tag, ",\\'\"`")
	if n < 0 || tag[n] == ',' {
		if n < 0 {
			n = len(tag)
		}
		return tag[:n], tag[n:]
	}
	if r, _ := utf8.DecodeRuneInString(tag); r == '_' || unicode.IsLetter(r) {
		m := len(tag) - len(strings.TrimLeftFunc(tag, func(r rune) bool {
			return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r)
		}))
		return tag[:m], tag[m:]
	}
	if comma := strings.IndexByte(tag, ','); comma >= 0 {
		return "", tag[comma:]
	}
	return "", ""
}

func nimbusTagOption(options, want string) bool {
	for options != "" {
		var option string
		option, options, _ = strings.Cut(options, ",")
		if option == want {
			return true
		}
	}
	return false
}

// nimbusIsZeroFunc is the omitzero test through a type's own IsZero method, if it has one.
func nimbusIsZeroFunc(t reflect.Type) func(reflect.Value) bool {
	switch {
	case t.Kind() == reflect.Interface && t.Implements(nimbusIsZeroerType):
		return func(v reflect.Value) bool {
			return v.IsNil() || v.Elem().Kind() == reflect.Pointer && v.Elem().IsNil() ||
				v.Interface().(nimbusIsZeroer).IsZero()
		}
	case t.Kind() == reflect.Pointer && t.Implements(nimbusIsZeroerType):
		return func(v reflect.Value) bool { return v.IsNil() || v.Interface().(nimbusIsZeroer).IsZero() }
	case t.Implements(nimbusIsZeroerType):
		return func(v reflect.Value) bool { return v.Interface().(nimbusIsZeroer).IsZero() }
	case reflect.PointerTo(t).Implements(nimbusIsZeroerType):
		return func(v reflect.Value) bool {
			if !v.CanAddr() {
				boxed := reflect.New(v.Type()).Elem()
				boxed.Set(v)
				v = boxed
			}
			return v.Addr().Interface().(nimbusIsZeroer).IsZero()
		}
	}
	return nil
}

// nimbusTypeFields is the fields json encodes for struct type t, in order,
// after Go's rules for embedded fields (a JSON tag wins a tie).
func nimbusTypeFields(t reflect.Type) []nimbusField {
	type level struct {
		typ   reflect.Type
		index []int
	}
	var fields []nimbusField
	next := []level{{typ: t}}
	var count, nextCount map[reflect.Type]int
	visited := map[reflect.Type]bool{}
	for len(next) > 0 {
		current := next
		next = nil
		count, nextCount = nextCount, map[reflect.Type]int{}
		for _, f := range current {
			if visited[f.typ] {
				continue
			}
			visited[f.typ] = true
			for i := 0; i < f.typ.NumField(); i++ {
				sf := f.typ.Field(i)
				if sf.Anonymous {
					et := sf.Type
					if et.Kind() == reflect.Pointer {
						et = et.Elem()
					}
					if !sf.IsExported() && et.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, options := nimbusTagName(tag)
				index := append(append([]int(nil), f.index...), i)
				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				quoted := false
				if nimbusTagOption(options, "string") {
					switch ft.Kind() {
					case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
						reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
						reflect.Float32, reflect.Float64, reflect.String:
						quoted = true
					}
				}
				if name != "" || !sf.Anonymous || ft.Kind() != reflect.Struct {
					field := nimbusField{
						name:      name,
						tagged:    name != "",
						index:     index,
						omitEmpty: nimbusTagOption(options, "omitempty"),
						omitZero:  nimbusTagOption(options, "omitzero"),
						quoted:    quoted,
					}
					if field.name == "" {
						field.name = sf.Name
					}
					if field.omitZero {
						field.isZero = nimbusIsZeroFunc(sf.Type)
					}
					fields = append(fields, field)
					if count[f.typ] > 1 {
						// Twice, so that the tie-break below sees the duplicate.
						fields = append(fields, field)
					}
					continue
				}
				nextCount[ft]++
				if nextCount[ft] == 1 {
					next = append(next, level{typ: ft, index: index})
				}
			}
		}
	}
	slices.SortFunc(fields, func(a, b nimbusField) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if c := len(a.index) - len(b.index); c != 0 {
			return c
		}
		if a.tagged != b.tagged {
			if a.tagged {
				return -1
			}
			return 1
		}
		return slices.Compare(a.index, b.index)
	})
	var kept []nimbusField
	for i := 0; i < len(fields); {
		j := i + 1
		for j < len(fields) && fields[j].name == fields[i].name {
			j++
		}
		// The first is dominant unless the next ties it in depth and in being tagged.
		if j-i == 1 || len(fields[i].index) != len(fields[i+1].index) || fields[i].tagged != fields[i+1].tagged {
			kept = append(kept, fields[i])
		}
		i = j
	}
	slices.SortFunc(kept, func(a, b nimbusField) int { return slices.Compare(a.index, b.index) })
	for i := range kept {
		ft := t
		for _, n := range kept[i].index {
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			ft = ft.Field(n).Type
		}
		kept[i].encode = nimbusEncoderFor(ft)
	}
	return kept
}
