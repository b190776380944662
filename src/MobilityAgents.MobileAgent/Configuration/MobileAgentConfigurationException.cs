namespace MobilityAgents.MobileAgent.Configuration;

/// <summary>
/// The configuration is unusable. <see cref="Errors"/> has one line per problem, each starting
/// with the key it concerns ("HomeAgent: 'http://gw:4433' is not https://host:port"); the daemon
/// prints them and exits with <see cref="MobileAgentHost.ExitConfigurationError"/>, no stack trace.
/// </summary>
public sealed class MobileAgentConfigurationException : Exception
{
    public MobileAgentConfigurationException(IReadOnlyList<string> errors)
        : base(string.Join(Environment.NewLine, errors))
    {
        Errors = errors;
    }

    public MobileAgentConfigurationException(string error)
        : this([error])
    {
    }

    public MobileAgentConfigurationException()
        : this("invalid configuration")
    {
    }

    public MobileAgentConfigurationException(string message, Exception innerException)
        : base(message, innerException)
    {
        Errors = [message];
    }

    public IReadOnlyList<string> Errors { get; }
}
