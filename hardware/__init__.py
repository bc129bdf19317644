"""ROS 2 bridge (rclpy). Needs the `ros` extra."""
