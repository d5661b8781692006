package host

import (
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// resubscribeDelay paces re-subscription to link events after the kernel
// drops a subscription (e.g. on a receive-buffer overrun).
const resubscribeDelay = time.Second

// SubscribeLinks starts a subscription to link events in ns, beginning
// with a dump of the current links. The channel is closed when done
// closes or the subscription fails.
func SubscribeLinks(ns netns.NsHandle, done <-chan struct{}) (<-chan netlink.LinkUpdate, error) {
	ch := make(chan netlink.LinkUpdate, 16)
	err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{
		Namespace:    &ns,
		ListExisting: true,
	})
	return ch, err
}

// WatchLink calls handle with every update about the link with index
// ifindex, from ch (made by SubscribeLinks) and from the subscriptions
// that replace it when the kernel drops one, until done closes. After an
// RTM_DELLINK for the link (handed to handle) nothing more is delivered.
func WatchLink(ns netns.NsHandle, ifindex int, done <-chan struct{}, ch <-chan netlink.LinkUpdate, handle func(netlink.LinkUpdate)) {
	gone := false
	for {
		// Read to the end even once gone: the subscription's goroutine
		// blocks until its channel is read.
		for u := range ch {
			if gone || int(u.Index) != ifindex {
				continue
			}
			gone = u.Header.Type == unix.RTM_DELLINK
			handle(u)
		}
		for {
			select {
			case <-done:
				return
			case <-time.After(resubscribeDelay):
			}
			var err error
			if ch, err = SubscribeLinks(ns, done); err == nil {
				break
			}
		}
	}
}
