// upstream: a small HTTP server for the examples, on loopback by default.
//
//	/echo  answers with the request line and headers, one "Name: value" a line
//	/sse   a text/event-stream of three events ("hello world" ...)
//
// Usage: go run ./upstream [-addr 127.0.0.1:18090]
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"sort"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18090", "listen address")
	flag.Parse()

	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s %s\n", r.Method, r.URL.RequestURI())
		names := make([]string, 0, len(r.Header))
		for name := range r.Header {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			for _, v := range r.Header[name] {
				fmt.Fprintf(w, "%s: %s\n", name, v)
			}
		}
	})
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		flusher, _ := w.(http.Flusher)
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(w, "data: hello world %d\n\n", i)
			if flusher != nil {
				flusher.Flush()
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	log.Printf("upstream listening on http://%s", *addr)
	log.Fatal(http.ListenAndServe(*addr, mux))
}
