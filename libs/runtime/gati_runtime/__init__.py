"""What every gati-operator service shares: settings, logging, NATS, consumer loop, health."""
