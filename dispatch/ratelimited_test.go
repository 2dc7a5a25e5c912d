package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/protocol"
)

// errTooMany stands for an upstream service's "429 Too Many Requests".
var errTooMany = errors.New("429 too many requests")

// A handler that meets an upstream rate limit answers RateLimited: the broker pauses the
// task's method (or key group) for that long and runs the task again later, with no attempt
// counted.
func ExampleRateLimited() {
	d := dispatch.New()
	d.MustRegister("send_email", dispatch.Func1(func(ctx context.Context, to string) (bool, error) {
		if err := errTooMany; err != nil { // the mail service said: retry after 2 s
			return false, dispatch.RateLimited(2 * time.Second)
		}
		return true, nil
	}))
	_, err := d.Call(context.Background(), nil, []byte("send_email"), []byte(`["bob@example.com"]`))
	var ce *codec.Error
	if errors.As(err, &ce) {
		fmt.Println(ce.Code == protocol.CodeRateLimited, string(ce.Data))
	}
	// Output: true {"rate_limited":true,"retry_after_ms":2000}
}
