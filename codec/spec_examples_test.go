package codec

// The examples of section 7 of the JSON-RPC 2.0 specification, shared by the spec tests, the
// fuzz seed corpus and the benchmarks. reply is "" when the server must send nothing.
var specExamples = []struct {
	name, request, reply string
}{
	{"positional_params/subtract_42_23",
		`{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}`,
		`{"jsonrpc": "2.0", "result": 19, "id": 1}`},
	{"positional_params/subtract_23_42",
		`{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}`,
		`{"jsonrpc": "2.0", "result": -19, "id": 2}`},
	{"named_params/subtrahend_first",
		`{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}`,
		`{"jsonrpc": "2.0", "result": 19, "id": 3}`},
	{"named_params/minuend_first",
		`{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}`,
		`{"jsonrpc": "2.0", "result": 19, "id": 4}`},
	{"notification/update",
		`{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}`,
		``},
	{"notification/foobar",
		`{"jsonrpc": "2.0", "method": "foobar"}`,
		``},
	{"non_existent_method",
		`{"jsonrpc": "2.0", "method": "foobar", "id": "1"}`,
		`{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}`},
	{"invalid_json",
		`{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]`,
		`{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}`},
	{"invalid_request_object",
		`{"jsonrpc": "2.0", "method": 1, "params": "bar"}`,
		`{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}`},
	{"batch_invalid_json",
		`[
  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
  {"jsonrpc": "2.0", "method"
]`,
		`{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}`},
	{"batch_empty_array",
		`[]`,
		`{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}`},
	{"batch_non_empty_invalid",
		`[1]`,
		`[
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}
]`},
	{"batch_invalid",
		`[1,2,3]`,
		`[
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}
]`},
	{"batch_mixed",
		`[
  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
  {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
  {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
  {"foo": "boo"},
  {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
  {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
]`,
		`[
  {"jsonrpc": "2.0", "result": 7, "id": "1"},
  {"jsonrpc": "2.0", "result": 19, "id": "2"},
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
  {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
  {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}
]`},
	{"batch_all_notifications",
		`[
  {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
  {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
]`,
		``},
}

// edgeFrames are further seeds for the fuzz targets: valid and invalid corner cases.
var edgeFrames = []string{
	`{"jsonrpc":"2.0","method":"m","id":null}`,
	`{"jsonrpc":"2.0","method":"m","id":-1.5e3}`,
	`{"jsonrpc":"2.0","method":"m","id":01}`,
	`{"jsonrpc":"2.0","method":"m","id":1.}`,
	`{"jsonrpc":"2.0","method":"m","id":true}`,
	`{"jsonrpc":"2.0","method":"m","id":{}}`,
	`{"jsonrpc":"2.0","method":"m","params":null}`,
	`{"jsonrpc":"2.0","method":"m","params":"x"}`,
	`{"jsonrpc":"2.0","method":"sub\u0074ract","params":[1,2],"id":"\u0041"}`,
	`{"jsonrpc":"2\u002e0","method":"m"}`,
	`{"jsonr\u0070c":"2.0","method":"m"}`,
	`{"jsonrpc":"1.0","jsonrpc":"2.0","method":"m"}`,
	`{"jsonrpc":"2.0","method":"m","method":1}`,
	`{"jsonrpc":"2.0","method":"\ud800x"}`,
	`{"jsonrpc":"2.0","method":"\ud83d\ude00"}`,
	`{"jsonrpc":"2.0","method":"é\u00e9"}`,
	"{\"jsonrpc\":\"2.0\",\"method\":\"a\x01\"}",
	"{\"jsonrpc\":\"2.0\",\"method\":\"\xff\"}",
	`{"jsonrpc":"2.0","method":"\x"}`,
	`{"jsonrpc":"2.0","result":1,"error":{"code":1,"message":"m"},"id":1}`,
	`{"jsonrpc":"2.0","id":1}`,
	`{"jsonrpc":"2.0","result":null,"id":null}`,
	`{"jsonrpc":"2.0","result":1}`,
	`{"jsonrpc":"2.0","error":{"code":-32000,"message":"x","data":{"a":[1,null]}},"id":"7"}`,
	`{"jsonrpc":"2.0","error":{"code":1.5,"message":"x"},"id":1}`,
	`{"jsonrpc":"2.0","error":{"code":1e3,"message":"x"},"id":1}`,
	`{"jsonrpc":"2.0","error":{"code":"1","message":"x"},"id":1}`,
	`{"jsonrpc":"2.0","error":{"code":1,"message":2},"id":1}`,
	`{"jsonrpc":"2.0","error":{"code":4294967296,"message":"x"},"id":1}`,
	`{"jsonrpc":"2.0","error":{"message":"x"},"id":1}`,
	`{"jsonrpc":"2.0","error":"x","id":1}`,
	`{"jsonrpc":"2.0","method":"m","params":[1,{"a":[true,false,null,"s",-0.5E+7]}],"x":{}}`,
	` {"jsonrpc":"2.0","method":"m"} `,
	`{"jsonrpc":"2.0","method":"m"} x`,
	`{"jsonrpc":"2.0","method":"m"}{}`,
	`[{"jsonrpc":"2.0","method":"m","id":1},{"jsonrpc":"2.0","result":2,"id":1},[],{},1]`,
	`[[{"jsonrpc":"2.0","method":"m","id":1}]]`,
	`[1,]`, `[,1]`, `{"a":1,}`, `{,}`, `"x"`, `null`, `true`, `1`, ``, ` `, `[`, `{`, `"`,
	`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
	"\ufeff{\"jsonrpc\":\"2.0\",\"method\":\"m\"}",
}
