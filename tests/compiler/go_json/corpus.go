// The glue's JSON (compiler/glue/go/nimbus_json.go, built beside this file)
// against encoding/json on a corpus with edge cases and seeded random input.
// Prints each difference and exits 1 if there is any.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"reflect"
	"strings"
	"time"
)

var failures int

func report(format string, args ...interface{}) {
	failures++
	if failures <= 40 {
		fmt.Printf(format+"\n", args...)
	}
}

func compareEncode(label string, value interface{}) {
	want, wantErr := json.Marshal(value)
	got, gotErr := nimbusMarshal(value)
	if (wantErr != nil) != (gotErr != nil) {
		report("encode %s: encoding/json error %v, ours %v", label, wantErr, gotErr)
	} else if wantErr == nil && !bytes.Equal(want, got) {
		report("encode %s:\n  encoding/json %s\n  ours          %s", label, want, got)
	}
}

func compareDecode(doc []byte) {
	var want interface{}
	wantErr := json.Unmarshal(doc, &want)
	got, gotErr := nimbusUnmarshal(doc)
	if (wantErr != nil) != (gotErr != nil) {
		report("decode %q: encoding/json error %v, ours %v", doc, wantErr, gotErr)
		return
	}
	if wantErr == nil && !reflect.DeepEqual(want, got) {
		report("decode %q: encoding/json %#v, ours %#v", doc, want, got)
	}
	if validErr := nimbusValid(doc); json.Valid(doc) != (validErr == nil) {
		report("valid %q: encoding/json %v, ours %v", doc, json.Valid(doc), validErr)
	}
	if wantErr == nil {
		compareEncode(fmt.Sprintf("decoded %q", doc), got)
	}
}

// -- types with methods and tags ----------------------------------------------------

type ValueMarshaler struct{ N int }

func (v ValueMarshaler) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf(" { \"n\" : %d ,\n \"html\": \"<a&b>\u2028\", \"list\" : [ 1 , 2 ] } ", v.N)), nil
}

type PointerMarshaler struct{ N int }

func (p *PointerMarshaler) MarshalJSON() ([]byte, error) { return []byte(`"pointer"`), nil }

type BadMarshaler struct{}

func (BadMarshaler) MarshalJSON() ([]byte, error) { return []byte(`{"a":`), nil }

type FailingMarshaler struct{}

func (FailingMarshaler) MarshalJSON() ([]byte, error) { return nil, errors.New("no") }

type HugeNumberMarshaler struct{}

func (HugeNumberMarshaler) MarshalJSON() ([]byte, error) { return []byte(`1e400`), nil }

type Text struct{ S string }

func (t Text) MarshalText() ([]byte, error) { return []byte("text:<" + t.S + ">"), nil }

type PointerText struct{ S string }

func (t *PointerText) MarshalText() ([]byte, error) { return []byte("ptext:" + t.S), nil }

type FailingText struct{}

func (FailingText) MarshalText() ([]byte, error) { return nil, errors.New("no text") }

type Zeroable struct{ V int }

func (z Zeroable) IsZero() bool { return z.V == 42 }

type PointerZeroable struct{ V int }

func (z *PointerZeroable) IsZero() bool { return z.V == 7 }

type Bytes []byte
type Level int
type MarshalByte byte

func (b MarshalByte) MarshalText() ([]byte, error) { return []byte{'b', byte(b) + '0'}, nil }

type Inner struct {
	A     int
	B     string `json:"b_name,omitempty"`
	Shade int    `json:"shade"`
}

type Other struct {
	A     int
	Shade int
	Extra bool
}

type Deep struct{ Deeper string }
type Middle struct{ Deep }

type hidden struct {
	Visible int
	secret  int
}

type Tagged struct {
	Name        string            `json:"name"`
	Skipped     int               `json:"-"`
	Dash        int               `json:"-,"`
	Renamed     string            `json:"a b<c>"`
	BadTag      int               `json:"x'y"`
	Quoted      int               `json:"'q',omitempty"`
	Odd         int               `json:"=x"`
	Bare        int               `json:"2,omitempty"`
	Empty       string            `json:",omitempty"`
	OmitInt     int               `json:",omitempty"`
	OmitFloat   float64           `json:",omitempty"`
	OmitNegZero float64           `json:",omitempty"`
	OmitBool    bool              `json:",omitempty"`
	OmitSlice   []int             `json:",omitempty"`
	OmitMap     map[string]int    `json:",omitempty"`
	OmitPtr     *int              `json:",omitempty"`
	OmitIface   interface{}       `json:",omitempty"`
	OmitStruct  Inner             `json:",omitempty"`
	OmitArray   [0]int            `json:",omitempty"`
	ZeroStruct  Inner             `json:",omitzero"`
	ZeroTime    time.Time         `json:",omitzero"`
	ZeroMethod  Zeroable          `json:",omitzero"`
	ZeroPtrM    PointerZeroable   `json:",omitzero"`
	ZeroIface   interface{}       `json:",omitzero"`
	StrInt      int               `json:",string"`
	StrBool     bool              `json:"sb,string"`
	StrFloat    float64           `json:",string"`
	StrString   string            `json:",string"`
	StrPtr      *int              `json:",string"`
	StrNilPtr   *int              `json:",string"`
	StrSlice    []int             `json:",string"`
	StrUint     uint8             `json:",string,omitempty"`
	Any         interface{}       `json:"any"`
	Nested      map[string]Inner  `json:"nested"`
	unexported  int
	Level       Level
	TextField   Text
	TextMap     map[Text]int
	PtrTextMap  map[*PointerText]int
	IntMap      map[int]string
	UintMap     map[uint16]bool
	ByteMap     map[MarshalByte]int
	ByteSlice   []MarshalByte
	Raw         json.RawMessage
	Number      json.Number
	EmptyNumber json.Number
	When        time.Time
	Dur         time.Duration
	Bin         []byte
	NamedBin    Bytes
	ByteArray   [3]byte
	F32         float32
}

type Embedding struct {
	Inner
	*Other
	Middle
	hidden
	Level
	Own string `json:"A"`
}

type Conflict struct {
	Inner
	Other
}

type Tree struct {
	Name     string
	Children []*Tree
	Parent   *Tree `json:"-"`
}

type Cycle struct{ Next *Cycle }

type Addressable struct {
	P  PointerMarshaler
	T  PointerText
	PP *PointerMarshaler
}

func main() {
	seven := 7
	var nilMarshaler *ValueMarshaler
	var nilPointerText *PointerText
	when := time.Date(2026, 12, 5, 23, 59, 1, 500, time.UTC)
	tagged := Tagged{
		Name: "n", Skipped: 1, Dash: 2, Renamed: "r", BadTag: 3, OmitNegZero: math.Copysign(0, -1),
		ZeroMethod: Zeroable{42}, ZeroPtrM: PointerZeroable{7},
		StrInt: -5, StrBool: true, StrFloat: 1e-7, StrString: `he said "<hi>"`, StrPtr: &seven,
		StrSlice: []int{1}, StrUint: 9, Any: []interface{}{1.5, "x", nil, map[string]interface{}{"z": 1, "a": 2}},
		Nested: map[string]Inner{"k": {A: 1}}, unexported: 9, Level: 3, TextField: Text{"t"},
		TextMap: map[Text]int{{"b"}: 2, {"a"}: 1}, PtrTextMap: map[*PointerText]int{{"p"}: 1},
		IntMap: map[int]string{-1: "m", 10: "ten", 9: "nine"}, UintMap: map[uint16]bool{65535: true, 2: false},
		ByteMap: map[MarshalByte]int{1: 1, 2: 2}, ByteSlice: []MarshalByte{1, 2},
		Raw: json.RawMessage(` [ 1 , "<x>" ] `), Number: json.Number("-12.5e3"), When: when,
		Dur: time.Second, Bin: []byte("hello, world?>"), NamedBin: Bytes{0, 255}, ByteArray: [3]byte{1, 2, 3},
		F32: 0.1,
	}
	tree := &Tree{Name: "root"}
	tree.Children = []*Tree{{Name: "a", Parent: tree}, {Name: "b"}}
	cycle := &Cycle{}
	cycle.Next = cycle
	cyclicMap := map[string]interface{}{}
	cyclicMap["self"] = cyclicMap
	cyclicSlice := []interface{}{nil}
	cyclicSlice[0] = cyclicSlice

	values := map[string]interface{}{
		"nil": nil, "true": true, "false": false, "int": 0, "neg": -1,
		"int8": int8(-128), "int16": int16(32767), "int32": int32(math.MinInt32), "int64": int64(math.MinInt64),
		"uint64": uint64(math.MaxUint64), "uintptr": uintptr(12), "uint8": uint8(255),
		"string": "", "hello": "hello", "html": "<a href='x'>&amp;</a>", "quotes": "quote\" back\\ slash/",
		"controls": "\x00\x01\b\f\n\r\t\x1f\x7f", "separators": "a\u2028b\u2029c", "invalid utf8": "\xff\xfe ab \xc3",
		"unicode": "é日本🎉", "nil bytes": []byte(nil), "empty bytes": []byte{}, "bytes": []byte("any carnal pleas"),
		"nil slice": []int(nil), "empty slice": []int{}, "mixed": []interface{}{1, "a", nil, true, 2.5},
		"nested slices": [][]string{{"a"}, nil, {}}, "nil map": map[string]int(nil),
		"map": map[string]int{"b": 2, "a": 1, "<": 0, "é": 3, "A": 4, "": 5},
		"float map": map[float64]int{1: 1, 1.5: 2, 1e21: 3, 1e-7: 5, -2: 6}, "float32 map": map[float32]int{0.1: 1},
		"nan key": map[float64]int{math.NaN(): 1}, "struct map": map[Inner]int{{}: 1},
		"tagged": tagged, "tagged pointer": &tagged, "embedding": Embedding{Inner: Inner{A: 1, Shade: 2}, Own: "own", Level: 4},
		"embedding ptr": Embedding{Other: &Other{A: 5, Shade: 6, Extra: true}, Middle: Middle{Deep{"d"}}, hidden: hidden{1, 2}},
		"conflict": Conflict{Inner{A: 1}, Other{A: 2, Extra: true}}, "tree": tree,
		"value marshaler": ValueMarshaler{3}, "value marshaler ptr": &ValueMarshaler{4}, "nil marshaler": nilMarshaler,
		"pointer marshaler value": PointerMarshaler{1}, "pointer marshaler ptr": &PointerMarshaler{1},
		"addressable": &Addressable{}, "not addressable": Addressable{},
		"marshalers in slice": []interface{}{ValueMarshaler{1}, &PointerMarshaler{}, Text{"x"}, &PointerText{"y"}, nilPointerText},
		"bad marshaler": BadMarshaler{}, "failing marshaler": FailingMarshaler{}, "huge number": HugeNumberMarshaler{},
		"text": Text{"<&>"}, "pointer text": &PointerText{"p"}, "failing text": FailingText{},
		"failing text key": map[FailingText]int{{}: 1}, "number": json.Number("1e5"), "bad number": json.Number("1e"),
		"empty number": json.Number(""), "raw": json.RawMessage(`{"a" : 1}`), "nil raw": json.RawMessage(nil),
		"time": when, "nan": math.NaN(), "inf": math.Inf(1), "f32 nan": float32(math.NaN()),
		"chan": make(chan int), "func": func() {}, "complex": complex(1, 2), "cycle": cycle,
		"cyclic map": cyclicMap, "cyclic slice": cyclicSlice, "chan in struct": struct{ C chan int }{},
		"unexported chan": struct{ c chan int }{}, "anonymous": struct {
			X int `json:"x,omitempty"`
			Y *int
		}{Y: &seven},
		"array": [2]Inner{}, "pointer pointer": func() interface{} { p := &seven; return &p }(),
		"interface map": map[string]interface{}{"n": nil, "list": []interface{}{map[string]interface{}{}}},
		"error record": struct {
			Type  string   `json:"type"`
			Stack []string `json:"stack"`
		}{"Panic", []string{}},
	}
	for label, value := range values {
		compareEncode(label, value)
	}
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 1.5, 0.1, 1e20, 1e21, 1e-6, 1e-7, 9.999999e-7, 123456789.123,
		5e-324, math.MaxFloat64, -1e-9, 1e-10, 12345678901234567890, 100, 1e100, 2.5e-8}
	for _, f := range floats {
		compareEncode(fmt.Sprint("float64 ", f), f)
		compareEncode(fmt.Sprint("float32 ", f), float32(f))
	}
	random := rand.New(rand.NewSource(19))
	for i := 0; i < 20000; i++ {
		f := math.Float64frombits(random.Uint64())
		compareEncode(fmt.Sprint("random float64 ", f), f)
		compareEncode(fmt.Sprint("random float32 ", f), math.Float32frombits(random.Uint32()))
		s := make([]byte, random.Intn(12))
		for j := range s {
			s[j] = byte(random.Intn(256))
		}
		compareEncode(fmt.Sprintf("random string %q", s), string(s))
	}

	docs := []string{
		"null", "true", "false", " 1 ", "-0", "0", "1.5e3", "1E+2", "1e-2", "0.000001", "1e400", "-1e400", "1e-400",
		"01", "-", "1.", ".5", "+1", "1e", "1e+", "--1", "0x10", "12345678901234567890", "-0.0e-0",
		`"abc"`, `"\u00e9\ud83c\udf89\n\/\b\f\r\t\"\\"`, `"\ud800"`, `"\ud800\u0041"`, `"\udc00\ud800"`,
		`"\ud83c\udf89\ud83c"`, `"\uD83C\uDF89"`, "\"\xff\xfe\xc3(\"", "\"a\x01\"", `"\x"`, `"\u12"`, `"\u12g4"`,
		`"unterminated`, `"\`, "{}", "[]", `{"a":1,"a":2}`, `{"a":[1,{"b":null}],"c":{"d":"e"}}`, "[1,]",
		`{"a":1,}`, "{,}", `{"a" 1}`, `{"a":}`, "{} x", "{}{}", "[", "{", `{"a"`, "", " ", "\t\n\r ", "tru",
		"nul", "truex", "nullnull", "\ufeff{}", "\v1", "[1 2]", `{"a":1 "b":2}`, `{1:2}`, `[[[]]]`, `[{}, [], ""]`,
		`{"\u0000":"\u001f","<&>":"\u2028"}`, `[1e308, 1.7976931348623157e309]`, "[-]", "[0.e1]", "[1.0e01]",
		`{"key":"value with \"quotes\" and \\backslashes\\"}`, "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
	}
	for _, depth := range []int{9999, 10000, 10001} {
		docs = append(docs, strings.Repeat("[", depth)+strings.Repeat("]", depth))
		docs = append(docs, strings.Repeat(`{"a":`, depth)+"1"+strings.Repeat("}", depth))
	}
	for _, doc := range docs {
		compareDecode([]byte(doc))
	}
	// Seeded mutations of the corpus: flipped, dropped and inserted bytes.
	alphabet := []byte("{}[]:,\"\\ u0123456789abcdefABCDEF.eE+-tnrfl\x00\x1f\x7f\xc3\xa9\xff")
	for i := 0; i < 40000; i++ {
		doc := []byte(docs[random.Intn(len(docs)-6)])
		for n := random.Intn(3) + 1; n > 0; n-- {
			at := 0
			if len(doc) > 0 {
				at = random.Intn(len(doc))
			}
			switch random.Intn(3) {
			case 0:
				if len(doc) > 0 {
					doc[at] = alphabet[random.Intn(len(alphabet))]
				}
			case 1:
				if len(doc) > 0 {
					doc = append(doc[:at:at], doc[at+1:]...)
				}
			default:
				doc = append(doc[:at:at], append([]byte{alphabet[random.Intn(len(alphabet))]}, doc[at:]...)...)
			}
		}
		compareDecode(doc)
	}
	if failures > 0 {
		fmt.Printf("%d differences\n", failures)
		os.Exit(1)
	}
	fmt.Println("same as encoding/json")
}
