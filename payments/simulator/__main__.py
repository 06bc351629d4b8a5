from payments.simulator.cli import main

raise SystemExit(main())
