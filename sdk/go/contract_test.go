package sdk

// Loading contract/rpc.json, checking JSON values against its types, and
// generating values shaped exactly as it says.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type ctField struct {
	Type     string   `json:"type"`
	Required bool     `json:"required"`
	Enum     []string `json:"enum"`
}

type ctShape struct {
	Fields    map[string]ctField `json:"fields"`
	Forbidden []string           `json:"forbidden"`
}

type ctMethod struct {
	Params        json.RawMessage `json:"params"` // "#Type" or {fields}
	Result        *ctShape        `json:"result"`
	Notifications []string        `json:"notifications"`
	Answered      *bool           `json:"answered"`
}

type contract struct {
	Errors        map[string]int      `json:"errors"`
	Types         map[string]ctShape  `json:"types"`
	Methods       map[string]ctMethod `json:"methods"`
	Notifications map[string]ctShape  `json:"notifications"`
}

// contractPath finds contract/rpc.json from sdk/go (two levels up), or from
// MATCHLOCK_CONTRACT.
func contractPath() string {
	if p := os.Getenv("MATCHLOCK_CONTRACT"); p != "" {
		return p
	}
	if wd, err := os.Getwd(); err == nil {
		return filepath.Join(wd, "..", "..", "contract", "rpc.json")
	}
	return filepath.Join("..", "..", "contract", "rpc.json")
}

func loadContract() (*contract, error) {
	data, err := os.ReadFile(contractPath())
	if err != nil {
		return nil, err
	}
	var c contract
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// paramsShape resolves a method's params to a shape.
func (c *contract) paramsShape(method string) (ctShape, error) {
	m, ok := c.Methods[method]
	if !ok {
		return ctShape{}, fmt.Errorf("method %q is not in the contract", method)
	}
	var ref string
	if json.Unmarshal(m.Params, &ref) == nil {
		shape, ok := c.Types[strings.TrimPrefix(ref, "#")]
		if !ok {
			return ctShape{}, fmt.Errorf("unknown type %s", ref)
		}
		return shape, nil
	}
	var shape ctShape
	if err := json.Unmarshal(m.Params, &shape); err != nil {
		return ctShape{}, err
	}
	return shape, nil
}

func decodeNumbers(raw []byte) (interface{}, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v interface{}
	err := dec.Decode(&v)
	return v, err
}

// checkShape lists every way obj differs from shape.
func (c *contract) checkShape(where string, shape ctShape, obj map[string]interface{}) []string {
	var problems []string
	for _, name := range shape.Forbidden {
		if _, ok := obj[name]; ok {
			problems = append(problems, fmt.Sprintf("%s: forbidden field %q", where, name))
		}
	}
	names := make([]string, 0, len(shape.Fields))
	for name := range shape.Fields {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f := shape.Fields[name]
		v, ok := obj[name]
		if !ok {
			if f.Required {
				problems = append(problems, fmt.Sprintf("%s: required field %q missing", where, name))
			}
			continue
		}
		problems = append(problems, c.checkValue(where+"."+name, f.Type, v)...)
		if len(f.Enum) > 0 {
			s, _ := v.(string)
			found := false
			for _, e := range f.Enum {
				found = found || e == s
			}
			if !found {
				problems = append(problems, fmt.Sprintf("%s.%s: %v not in %v", where, name, v, f.Enum))
			}
		}
	}
	for name := range obj {
		if _, ok := shape.Fields[name]; !ok {
			problems = append(problems, fmt.Sprintf("%s: field %q is not in the contract", where, name))
		}
	}
	return problems
}

// checkValue checks v (decoded with UseNumber) against a contract type.
func (c *contract) checkValue(where, typ string, v interface{}) []string {
	if strings.Contains(typ, "|") && !strings.HasPrefix(typ, "array<") && !strings.HasPrefix(typ, "map<") {
		var all []string
		for _, alt := range strings.Split(typ, "|") {
			p := c.checkValue(where, alt, v)
			if len(p) == 0 {
				return nil
			}
			all = append(all, p...)
		}
		return []string{fmt.Sprintf("%s: matches none of %s (%s)", where, typ, strings.Join(all, "; "))}
	}
	bad := func(want string) []string {
		return []string{fmt.Sprintf("%s: %s expected, got %T %v", where, want, v, v)}
	}
	switch {
	case typ == "string":
		if _, ok := v.(string); !ok {
			return bad("string")
		}
	case typ == "base64":
		s, ok := v.(string)
		if !ok {
			return bad("base64 string")
		}
		if _, err := base64.StdEncoding.DecodeString(s); err != nil {
			return []string{fmt.Sprintf("%s: not standard base64: %v", where, err)}
		}
	case typ == "integer":
		n, ok := v.(json.Number)
		if !ok {
			return bad("integer")
		}
		if _, err := n.Int64(); err != nil || strings.ContainsAny(n.String(), ".eE") {
			return bad("integer")
		}
	case typ == "number":
		if _, ok := v.(json.Number); !ok {
			return bad("number")
		}
	case typ == "boolean":
		if _, ok := v.(bool); !ok {
			return bad("boolean")
		}
	case typ == "object":
		if _, ok := v.(map[string]interface{}); !ok {
			return bad("object")
		}
	case strings.HasPrefix(typ, "array<"):
		arr, ok := v.([]interface{})
		if !ok {
			return bad(typ)
		}
		inner := typ[len("array<") : len(typ)-1]
		var problems []string
		for i, item := range arr {
			problems = append(problems, c.checkValue(fmt.Sprintf("%s[%d]", where, i), inner, item)...)
		}
		return problems
	case strings.HasPrefix(typ, "map<"):
		obj, ok := v.(map[string]interface{})
		if !ok {
			return bad(typ)
		}
		inner := typ[len("map<") : len(typ)-1]
		var problems []string
		for k, item := range obj {
			problems = append(problems, c.checkValue(where+"["+k+"]", inner, item)...)
		}
		return problems
	case strings.HasPrefix(typ, "#"):
		shape, ok := c.Types[typ[1:]]
		if !ok {
			return []string{fmt.Sprintf("%s: unknown type %s", where, typ)}
		}
		obj, ok := v.(map[string]interface{})
		if !ok {
			return bad(typ)
		}
		return c.checkShape(where, shape, obj)
	default:
		return []string{fmt.Sprintf("%s: unknown contract type %q", where, typ)}
	}
	return nil
}

// checkRequestLine checks one request line the SDK sent: envelope, method,
// params.
func (c *contract) checkRequestLine(line []byte) []string {
	v, err := decodeNumbers(line)
	if err != nil {
		return []string{fmt.Sprintf("not JSON: %v: %s", err, line)}
	}
	msg, ok := v.(map[string]interface{})
	if !ok {
		return []string{fmt.Sprintf("not an object: %s", line)}
	}
	var problems []string
	if msg["jsonrpc"] != "2.0" {
		problems = append(problems, fmt.Sprintf("jsonrpc is %v", msg["jsonrpc"]))
	}
	method, _ := msg["method"].(string)
	problems = append(problems, c.checkValue(method+" id", "integer", msg["id"])...)
	for k := range msg {
		if k != "jsonrpc" && k != "id" && k != "method" && k != "params" {
			problems = append(problems, fmt.Sprintf("%s: unexpected envelope field %q", method, k))
		}
	}
	shape, err := c.paramsShape(method)
	if err != nil {
		return append(problems, err.Error())
	}
	params, present := msg["params"]
	if !present {
		params = map[string]interface{}{}
	}
	obj, ok := params.(map[string]interface{})
	if !ok {
		return append(problems, fmt.Sprintf("%s: params is not an object", method))
	}
	return append(problems, c.checkShape(method, shape, obj)...)
}

// generate builds a value of typ with every field filled in.
func (c *contract) generate(typ string) interface{} {
	if i := strings.Index(typ, "|"); i >= 0 && !strings.HasPrefix(typ, "array<") && !strings.HasPrefix(typ, "map<") {
		typ = typ[:i]
	}
	switch {
	case typ == "string":
		return "x"
	case typ == "base64":
		return b64("x")
	case typ == "integer":
		return 1
	case typ == "number":
		return 1.5
	case typ == "boolean":
		return true
	case typ == "object":
		return map[string]interface{}{}
	case strings.HasPrefix(typ, "array<"):
		return []interface{}{c.generate(typ[len("array<") : len(typ)-1])}
	case strings.HasPrefix(typ, "map<"):
		return map[string]interface{}{"k": c.generate(typ[len("map<") : len(typ)-1])}
	case strings.HasPrefix(typ, "#"):
		return c.generateShape(c.Types[typ[1:]])
	}
	return nil
}

func (c *contract) generateShape(shape ctShape) map[string]interface{} {
	out := map[string]interface{}{}
	for name, f := range shape.Fields {
		if len(f.Enum) > 0 {
			out[name] = f.Enum[0]
			continue
		}
		out[name] = c.generate(f.Type)
	}
	return out
}

// handleContract answers every method with notifications and a result built
// from the contract alone (FAKE_SCENARIO=contract_results).
func (f *fakeServer) handleContract(id uint64, method string, p map[string]interface{}) bool {
	c, err := loadContract()
	if err != nil {
		f.fail(id, -32603, "contract: "+err.Error())
		return false
	}
	m, ok := c.Methods[method]
	if !ok {
		f.fail(id, -32601, "method not found: "+method)
		return false
	}
	if m.Answered != nil && !*m.Answered {
		return false
	}
	for _, n := range m.Notifications {
		params := c.generateShape(c.Notifications[n])
		if _, ok := params["id"]; ok {
			params["id"] = id
		}
		f.notify(n, params)
	}
	f.notify("event", c.generateShape(c.Notifications["event"]))
	result := map[string]interface{}{}
	if m.Result != nil {
		result = c.generateShape(*m.Result)
	}
	f.result(id, result)
	return method == "close"
}
