package zmtp_test

import (
	"context"
	"fmt"
	"time"

	"github.com/zerotask/zerotask/zmtp"
)

// A CURVE server admits the client keys it lists; every frame between them is encrypted, and
// the server's received messages name the key their sender authenticated with.
func ExampleCurveServer() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	serverKeys, _ := zmtp.NewCurveKeyPair() // or zmtp.LoadCurveSecret("broker_secret")
	clientKeys, _ := zmtp.NewCurveKeyPair()

	router := zmtp.NewRouter(zmtp.Options{Security: zmtp.CurveServer(serverKeys, zmtp.CurveAllow(clientKeys.Public))})
	defer router.Close()
	if err := router.Bind("tcp://127.0.0.1:0"); err != nil {
		panic(err)
	}
	dealer := zmtp.NewDealer(zmtp.Options{Security: zmtp.CurveClient(serverKeys.Public, clientKeys)})
	defer dealer.Close()
	if err := dealer.Connect(router.LastEndpoint()); err != nil {
		panic(err)
	}

	_ = dealer.SendFrames(ctx, []byte("secret ping"))
	m, err := router.Recv(ctx)
	if err != nil {
		panic(err)
	}
	key, _ := m.CurveKey()
	fmt.Printf("%q from the listed key: %v\n", m.Frames[1], key == clientKeys.Public)
	m.Release()
	// Output:
	// "secret ping" from the listed key: true
}

// Keys are written in Z85, as libzmq's zmq_curve_keypair and czmq certificates write them.
func ExampleParseCurveKey() {
	k, err := zmtp.ParseCurveKey("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")
	fmt.Println(err, len(k), k)
	// Output:
	// <nil> 32 rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7
}
